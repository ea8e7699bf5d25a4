//! Fault injection: wrappers around the ports that fail calls on a schedule, as DynamoDB and
//! SQS do under throttling, 5xx and timeouts; inbox batch writes may fail after writing part of
//! the batch (UnprocessedItems). A schedule is either random (seeded, a failure rate) or a crash
//! at the k-th call (every later call fails too, until the "process" restarts).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::directory::DirectorySnapshot;
use shared::error::{StoreError, StoreResult};
use shared::model::*;
use shared::ports::*;
use shared::runtime::Ports;
use uuid::Uuid;

enum Decision {
    Proceed,
    FailBefore(StoreError),
    FailAfter(StoreError),
}

/// When calls fail.
pub struct Faults {
    rng: Mutex<StdRng>,
    rate: f64,
    calls: AtomicU64,
    crash_at: Mutex<Option<u64>>,
    crashed: AtomicBool,
    /// Operations that fail the next time they are called (once each).
    fail_next: Mutex<Vec<String>>,
    pub injected: AtomicU64,
    /// A stall: the call with this index waits until `resume` (the process is stalled, not dead).
    stall: Mutex<Option<(u64, Arc<tokio::sync::Notify>)>>,
    /// A stall of one operation: its calls after this many more of it wait until `resume`
    /// (which closes the semaphore: every waiter, and any call still on its way to it, goes on).
    stall_op: Mutex<Option<(String, u64, Arc<tokio::sync::Semaphore>)>>,
    stalled: AtomicBool,
    /// Paths the schedule reached, counted: `{op} failed` for each failure injected,
    /// `{op} partial: none|some|all` for failing batches by what they wrote, and what the
    /// wrappers saw (`fan-out resumed from saved progress`).
    reached: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Whether calls give way to other tasks at random (see [`Faults::interleaving`]).
    interleave: bool,
    /// Calls under way now, and the most there were at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    /// Every call's operation, in order.
    ops: Mutex<Vec<String>>,
}

impl Faults {
    pub fn random(seed: u64, rate: f64) -> Arc<Faults> {
        Arc::new(Faults {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            rate,
            calls: AtomicU64::new(0),
            crash_at: Mutex::new(None),
            crashed: AtomicBool::new(false),
            fail_next: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
            stall: Mutex::new(None),
            stall_op: Mutex::new(None),
            stalled: AtomicBool::new(false),
            reached: Mutex::new(Default::default()),
            interleave: false,
            in_flight: AtomicU64::new(0),
            most_in_flight: AtomicU64::new(0),
            ops: Mutex::new(Vec::new()),
        })
    }

    /// No faults, but every call gives way to other tasks a random number of times (1–3, drawn
    /// from `seed`) before it starts and after it ends. The memory adapters never wait, so
    /// without this concurrent requests on memory run one after another; with it, their calls
    /// interleave as they do against a real store.
    pub fn interleaving(seed: u64) -> Arc<Faults> {
        let mut faults = Self::random(seed, 0.0);
        Arc::get_mut(&mut faults).expect("new").interleave = true;
        faults
    }

    /// The most calls that were under way at once (1: they ran one after another).
    pub fn most_in_flight(&self) -> u64 {
        self.most_in_flight.load(Ordering::SeqCst)
    }

    /// Gives way to other tasks, when interleaving.
    async fn pause(&self) {
        if !self.interleave {
            return;
        }
        let turns = self.rng.lock().unwrap().random_range(1..=3u8);
        for _ in 0..turns {
            tokio::task::yield_now().await;
        }
    }

    /// No faults until `crash_at(k)`.
    pub fn none() -> Arc<Faults> {
        Self::random(0, 0.0)
    }

    /// The process dies at the k-th call from now: that call and every one after it fail.
    pub fn crash_at(&self, k: u64) {
        *self.crash_at.lock().unwrap() = Some(self.calls.load(Ordering::SeqCst) + k);
    }

    /// The k-th call from now stalls (waits, then goes on) until `resume`.
    pub fn stall_at(&self, k: u64) {
        let at = self.calls.load(Ordering::SeqCst) + k;
        *self.stall.lock().unwrap() = Some((at, Arc::new(tokio::sync::Notify::new())));
    }

    /// The calls of `op` after `skip` more of them stall (wait, then go on) until `resume`: the
    /// moment after the `skip`-th, however many run at once.
    pub fn stall_before(&self, op: &str, skip: u64) {
        self.stalled.store(false, Ordering::SeqCst);
        *self.stall_op.lock().unwrap() =
            Some((op.to_string(), skip, Arc::new(tokio::sync::Semaphore::new(0))));
    }

    /// Whether a call is stalled now.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    /// Lets the stalled call go on.
    pub fn resume(&self) {
        if let Some((_, gate)) = self.stall.lock().unwrap().take() {
            gate.notify_one();
        }
        if let Some((_, _, gate)) = self.stall_op.lock().unwrap().take() {
            gate.close();
            self.stalled.store(false, Ordering::SeqCst);
        }
    }

    /// The next call of `op` fails (before it takes effect), once.
    pub fn fail_next(&self, op: &str) {
        self.fail_next.lock().unwrap().push(op.to_string());
    }

    /// A new process: calls succeed again.
    pub fn restart(&self) {
        *self.crash_at.lock().unwrap() = None;
        self.crashed.store(false, Ordering::SeqCst);
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The operation of every call so far, in order (each one request to the store or queue
    /// on AWS, but for batches larger than one request takes).
    pub fn ops(&self) -> Vec<String> {
        self.ops.lock().unwrap().clone()
    }

    /// Counts a path reached.
    pub fn note(&self, what: impl Into<String>) {
        *self.reached.lock().unwrap().entry(what.into()).or_default() += 1;
    }

    /// The paths reached so far, counted.
    pub fn reached(&self) -> std::collections::BTreeMap<String, u64> {
        self.reached.lock().unwrap().clone()
    }

    fn check(&self, op: &str) -> StoreResult<()> {
        match self.decide(op) {
            Decision::Proceed => Ok(()),
            Decision::FailBefore(e) | Decision::FailAfter(e) => Err(e),
        }
    }

    fn decide(&self, op: &str) -> Decision {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.ops.lock().unwrap().push(op.to_string());
        if self.crashed() || self.crash_at.lock().unwrap().is_some_and(|k| n >= k) {
            self.crashed.store(true, Ordering::SeqCst);
            return Decision::FailBefore(StoreError::Transient(format!("process crashed before {op}")));
        }
        {
            let mut once = self.fail_next.lock().unwrap();
            if let Some(i) = once.iter().position(|o| o == op) {
                once.remove(i);
                self.injected.fetch_add(1, Ordering::SeqCst);
                self.note(format!("{op} failed"));
                return Decision::FailBefore(StoreError::Transient(format!("injected failure of {op}")));
            }
        }
        let rate = self.rate;
        let mut rng = self.rng.lock().unwrap();
        if rate > 0.0 && rng.random_bool(rate) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            self.note(format!("{op} failed"));
            // Throttling and 5xx fail before the call takes effect; a timeout may come after it
            // did (the write committed, the answer was lost). The kind is drawn too.
            return match rng.random_range(0..3u8) {
                0 => Decision::FailBefore(StoreError::Transient(format!(
                    "injected ThrottlingException in {op}"
                ))),
                1 => Decision::FailBefore(StoreError::Transient(format!(
                    "injected InternalServerError in {op}"
                ))),
                _ => Decision::FailAfter(StoreError::Transient(format!("injected timeout after {op}"))),
            };
        }
        Decision::Proceed
    }

    /// Runs `call` under the schedule.
    pub async fn run<T>(
        &self,
        op: &str,
        call: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let index = self.calls.load(Ordering::SeqCst);
        let gate = self.stall.lock().unwrap().as_ref().filter(|(at, _)| *at == index).map(|(_, g)| g.clone());
        let mut held = None;
        if let Some((stalled_op, skip, semaphore)) = self.stall_op.lock().unwrap().as_mut()
            && stalled_op == op
        {
            match skip {
                0 => held = Some(semaphore.clone()),
                _ => *skip -= 1,
            }
        }
        if let Some(held) = held {
            self.stalled.store(true, Ordering::SeqCst);
            let _closed = held.acquire().await;
        }
        if let Some(gate) = gate {
            self.stalled.store(true, Ordering::SeqCst);
            gate.notified().await;
            self.stalled.store(false, Ordering::SeqCst);
        }
        self.pause().await;
        match self.decide(op) {
            Decision::Proceed => {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let result = call.await;
                self.pause().await;
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                result
            }
            Decision::FailBefore(e) => Err(e),
            Decision::FailAfter(e) => {
                let _ = call.await;
                Err(e)
            }
        }
    }

    /// How many of `len` items a failing batch wrote before failing: some (UnprocessedItems,
    /// failed entries), none, or all of them (everything written, then the answer lost).
    fn partial(&self, op: &str, len: usize) -> usize {
        let written = self.rng.lock().unwrap().random_range(0..=len);
        let what = match written {
            0 => "none",
            w if w == len => "all",
            _ => "some",
        };
        self.note(format!("{op} partial: {what}"));
        written
    }
}

pub struct FaultyNotifications(pub Arc<dyn NotificationStore>, pub Arc<Faults>);
pub struct FaultyInbox(pub Arc<dyn InboxStore>, pub Arc<Faults>);
pub struct FaultyDirectory(pub Arc<dyn Directory>, pub Arc<Faults>);
pub struct FaultyQueue(pub Arc<dyn Queue>, pub Arc<Faults>);

#[async_trait]
impl NotificationLookup for FaultyNotifications {
    async fn get(&self, id: NotificationId) -> StoreResult<Option<Notification>> {
        let found = self.1.run("get", self.0.get(id)).await;
        if let Ok(Some(n)) = &found
            && n.status == Status::FanningOut
            && n.fanout.chunks_enqueued > 0
        {
            // A fan-out reads its notification first: this one goes on from a saved batch.
            self.1.note("fan-out read back saved progress");
        }
        found
    }
    async fn get_by_schedule_id(&self, sid: u64) -> StoreResult<Option<Notification>> {
        self.1.run("get_by_schedule_id", self.0.get_by_schedule_id(sid)).await
    }
}

#[async_trait]
impl NotificationIntake for FaultyNotifications {
    async fn next_schedule_id(&self) -> StoreResult<u64> {
        self.1.run("next_schedule_id", self.0.next_schedule_id()).await
    }
    async fn insert(&self, n: &Notification) -> StoreResult<()> {
        self.1.run("insert", self.0.insert(n)).await
    }
    async fn consume_quota(&self, c: CompanyId, day: &str, n: u64, cap: u64) -> StoreResult<bool> {
        self.1.run("consume_quota", self.0.consume_quota(c, day, n, cap)).await
    }
}

#[async_trait]
impl FanoutLedger for FaultyNotifications {
    async fn due(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        self.1.run("due", self.0.due(now, limit)).await
    }
    async fn claim(&self, id: NotificationId, now: DateTime<Utc>, lease: DateTime<Utc>) -> StoreResult<bool> {
        let won = self.1.run("claim", self.0.claim(id, now, lease)).await;
        if let Ok(true) = won {
            self.1.note("claim won");
        }
        won
    }
    async fn save_progress(
        &self,
        id: NotificationId,
        p: &FanoutProgress,
        held: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.1.note("save_progress called");
        self.1.run("save_progress", self.0.save_progress(id, p, held, lease)).await
    }
    async fn finish_fanout(
        &self,
        id: NotificationId,
        c: u32,
        r: u64,
        held: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Status> {
        self.1.run("finish_fanout", self.0.finish_fanout(id, c, r, held, now)).await
    }
}

#[async_trait]
impl WorkLeases for FaultyNotifications {
    async fn start(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> StoreResult<ChunkStart> {
        self.1.run("start", self.0.start(id, work, holder, now, lease)).await
    }
    async fn release(
        &self,
        id: NotificationId,
        work: Work,
        holder: &str,
        held: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.1.run("release", self.0.release(id, work, holder, held)).await
    }
}

#[async_trait]
impl DeliveryLedger for FaultyNotifications {
    /// Faulted as `start` is: it is a chunk's start.
    async fn start_chunk(
        &self,
        id: NotificationId,
        c: u32,
        people: u64,
        holder: &str,
        now: DateTime<Utc>,
        lease: DateTime<Utc>,
    ) -> StoreResult<Option<ChunkStart>> {
        self.1.run("start", self.0.start_chunk(id, c, people, holder, now, lease)).await
    }
    async fn keep_recipients(
        &self,
        id: NotificationId,
        c: u32,
        people: &[UserId],
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.1.run("keep_recipients", self.0.keep_recipients(id, c, people, until)).await
    }
    async fn record_chunk(
        &self,
        id: NotificationId,
        c: u32,
        t: &ChunkTally,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.1.run("record_chunk", self.0.record_chunk(id, c, t, now)).await
    }
    async fn complete_if_done(&self, id: NotificationId, now: DateTime<Utc>) -> StoreResult<Status> {
        self.1.run("complete_if_done", self.0.complete_if_done(id, now)).await
    }
    async fn chunk_recorded(&self, id: NotificationId, c: u32) -> StoreResult<bool> {
        self.1.run("chunk_recorded", self.0.chunk_recorded(id, c)).await
    }
    async fn chunk_context(&self, id: NotificationId, c: u32) -> StoreResult<ChunkContext> {
        self.1.run("chunk_context", self.0.chunk_context(id, c)).await
    }
    async fn push_context(&self, id: NotificationId, c: u32) -> StoreResult<ChunkContext> {
        self.1.run("push_context", self.0.push_context(id, c)).await
    }
    async fn record_pushes(
        &self,
        id: NotificationId,
        c: u32,
        counts: &PushCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.1.run("record_pushes", self.0.record_pushes(id, c, counts, now)).await
    }
    async fn add_sent_marks(
        &self,
        id: NotificationId,
        c: u32,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.1.run("add_sent_marks", self.0.add_sent_marks(id, c, keys, now)).await
    }
    async fn mark_failed(&self, id: NotificationId, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.1.run("mark_failed", self.0.mark_failed(id, reason, now)).await
    }
    async fn record_callback(&self, id: NotificationId, r: &CallbackResult) -> StoreResult<()> {
        self.1.run("record_callback", self.0.record_callback(id, r)).await
    }
}

#[async_trait]
impl EmailLedger for FaultyNotifications {
    async fn email_context(&self, id: NotificationId, c: u32, part: u32) -> StoreResult<ChunkContext> {
        self.1.run("email_context", self.0.email_context(id, c, part)).await
    }
    async fn record_emails(
        &self,
        id: NotificationId,
        c: u32,
        part: u32,
        counts: &EmailCounts,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.1.run("record_emails", self.0.record_emails(id, c, part, counts, now)).await
    }
    async fn record_feedback(
        &self,
        id: NotificationId,
        message_id: &str,
        kind: FeedbackKind,
        now: DateTime<Utc>,
    ) -> StoreResult<ChunkRecord> {
        self.1.run("record_feedback", self.0.record_feedback(id, message_id, kind, now)).await
    }
}

#[async_trait]
impl DeliveryLog for FaultyNotifications {
    async fn log(&self, id: NotificationId, page: &PageRequest) -> StoreResult<Page<LogEntry>> {
        self.1.run("log", self.0.log(id, page)).await
    }
}

#[async_trait]
impl SendControl for FaultyNotifications {
    async fn change(&self, changed: &Notification, read: u64) -> StoreResult<ChangeOutcome> {
        self.1.run("change", self.0.change(changed, read)).await
    }
    async fn cancel(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<CancelOutcome> {
        self.1.run("cancel", self.0.cancel(id, by, now)).await
    }
    async fn retract(&self, id: NotificationId, by: &str, now: DateTime<Utc>) -> StoreResult<RetractOutcome> {
        self.1.run("retract", self.0.retract(id, by, now)).await
    }
    async fn correct(&self, changed: &Notification, read: u64) -> StoreResult<CorrectOutcome> {
        self.1.run("correct", self.0.correct(changed, read)).await
    }
}

#[async_trait]
impl RecallLedger for FaultyNotifications {
    async fn started_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        self.1.run("started_chunks", self.0.started_chunks(id)).await
    }
    async fn retracted_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        self.1.run("retracted_chunks", self.0.retracted_chunks(id)).await
    }
    async fn kept_chunks(&self, id: NotificationId) -> StoreResult<Vec<u32>> {
        self.1.run("kept_chunks", self.0.kept_chunks(id)).await
    }
    async fn chunk_retracted(&self, id: NotificationId, c: u32) -> StoreResult<bool> {
        self.1.run("chunk_retracted", self.0.chunk_retracted(id, c)).await
    }
    async fn unfinished(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<NotificationId>> {
        self.1.run("unfinished", self.0.unfinished(now, limit)).await
    }
    async fn recheck(&self, id: NotificationId, at: Option<DateTime<Utc>>) -> StoreResult<()> {
        self.1.run("recheck", self.0.recheck(id, at)).await
    }
    async fn recipients(&self, id: NotificationId, c: u32) -> StoreResult<Vec<UserId>> {
        self.1.run("recipients", self.0.recipients(id, c)).await
    }
    async fn close_chunk(&self, id: NotificationId, c: u32, now: DateTime<Utc>) -> StoreResult<bool> {
        self.1.run("close_chunk", self.0.close_chunk(id, c, now)).await
    }
    async fn record_retracted(
        &self,
        id: NotificationId,
        c: u32,
        people: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.1.run("record_retracted", self.0.record_retracted(id, c, people, now)).await
    }
}

#[async_trait]
impl SentHistory for FaultyNotifications {
    async fn history(&self, scope: &HistoryScope, page: &PageRequest) -> StoreResult<Page<Notification>> {
        self.1.run("history", self.0.history(scope, page)).await
    }
    async fn record(&self, schedule_id: u64) -> StoreResult<Option<Notification>> {
        self.1.run("record", self.0.record(schedule_id)).await
    }
}

#[async_trait]
impl IdempotencyStore for FaultyNotifications {
    async fn claim_idempotency(
        &self,
        s: &str,
        d: &str,
        e: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyClaim> {
        self.1.run("claim_idempotency", self.0.claim_idempotency(s, d, e, now)).await
    }
    async fn complete_idempotency(&self, r: &IdempotencyRecord) -> StoreResult<()> {
        self.1.run("complete_idempotency", self.0.complete_idempotency(r)).await
    }
    async fn release_idempotency(&self, s: &str) -> StoreResult<()> {
        self.1.run("release_idempotency", self.0.release_idempotency(s)).await
    }
}

#[async_trait]
impl InboxDelivery for FaultyInbox {
    async fn put_content(&self, c: &InboxContent) -> StoreResult<()> {
        self.1.run("put_content", self.0.put_content(c)).await
    }
    async fn put_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<()> {
        self.1.pause().await;
        if let Err(e) = self.1.check("put_entries") {
            // Part of the batch made it before the failure, as with UnprocessedItems.
            let written = self.1.partial("put_entries", entries.len());
            if !self.1.crashed() {
                self.0.put_entries(&entries[..written], stamp).await?;
            }
            return Err(e);
        }
        self.0.put_entries(entries, stamp).await
    }
    async fn put_new_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<Vec<UserId>> {
        self.1.run("put_new_entries", self.0.put_new_entries(entries, stamp)).await
    }
    async fn remove_entries(&self, entries: &[InboxEntry]) -> StoreResult<()> {
        self.1.run("remove_entries", self.0.remove_entries(entries)).await
    }
    async fn correct_content(&self, c: &InboxContent, revision: u64) -> StoreResult<()> {
        self.1.run("correct_content", self.0.correct_content(c, revision)).await
    }
}

#[async_trait]
impl Center for FaultyInbox {
    async fn get(&self, u: UserId, n: NotificationId) -> StoreResult<Option<InboxItem>> {
        self.1.run("inbox get", self.0.get(u, n)).await
    }
    async fn list(
        &self,
        u: UserId,
        q: &InboxQuery,
        now: DateTime<Utc>,
        p: &PageRequest,
    ) -> StoreResult<Page<InboxItem>> {
        self.1.run("inbox list", self.0.list(u, q, now, p)).await
    }
    async fn count(&self, u: UserId, now: DateTime<Utc>, window: usize) -> StoreResult<InboxCounts> {
        self.1.run("inbox count", self.0.count(u, now, window)).await
    }
    async fn mark(&self, u: UserId, n: NotificationId, m: Mark, at: DateTime<Utc>) -> StoreResult<bool> {
        self.1.run("mark", self.0.mark(u, n, m, at)).await
    }
    async fn mark_all(&self, u: UserId, m: MarkAll, at: DateTime<Utc>) -> StoreResult<()> {
        self.1.run("mark_all", self.0.mark_all(u, m, at)).await
    }
}

#[async_trait]
impl Accounts for FaultyDirectory {
    async fn credential(&self, d: &str) -> StoreResult<Option<Credential>> {
        self.1.run("credential", self.0.credential(d)).await
    }
    async fn credentials(&self, d: &[&str]) -> StoreResult<Vec<Option<Credential>>> {
        self.1.run("credentials", self.0.credentials(d)).await
    }
    async fn company(&self, id: CompanyId) -> StoreResult<Option<Company>> {
        self.1.run("company", self.0.company(id)).await
    }
    async fn user_and_company(
        &self,
        u: UserId,
        c: CompanyId,
    ) -> StoreResult<(Option<User>, Option<Company>)> {
        self.1.run("user_and_company", self.0.user_and_company(u, c)).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.1.run("user", self.0.user(id)).await
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        self.1.run("users", self.0.users(ids)).await
    }
    async fn user_by_email(&self, e: &str) -> StoreResult<Option<User>> {
        self.1.run("user_by_email", self.0.user_by_email(e)).await
    }
    async fn department(&self, id: Uuid) -> StoreResult<Option<Department>> {
        self.1.run("department", self.0.department(id)).await
    }
    async fn department_has_member(&self, d: Uuid, u: UserId) -> StoreResult<bool> {
        self.1.run("department_has_member", self.0.department_has_member(d, u)).await
    }
}

#[async_trait]
impl Audiences for FaultyDirectory {
    async fn company_members(&self, c: CompanyId, p: &PageRequest) -> StoreResult<Page<UserId>> {
        self.1.run("company_members", self.0.company_members(c, p)).await
    }
    async fn teams(&self, c: CompanyId, t: &[String]) -> StoreResult<Vec<Team>> {
        self.1.run("teams", self.0.teams(c, t)).await
    }
    async fn team(&self, c: CompanyId, t: &str) -> StoreResult<Option<Team>> {
        self.1.run("team", self.0.team(c, t)).await
    }
    async fn team_members(&self, c: CompanyId, t: &str, p: &PageRequest) -> StoreResult<Page<UserId>> {
        self.1.run("team_members", self.0.team_members(c, t, p)).await
    }
    async fn event(&self, id: Uuid) -> StoreResult<Option<Event>> {
        self.1.run("event", self.0.event(id)).await
    }
    async fn event_attendees(&self, e: Uuid, t: &str, p: &PageRequest) -> StoreResult<Page<Attendee>> {
        self.1.run("event_attendees", self.0.event_attendees(e, t, p)).await
    }
    async fn smart_library(&self, id: u64) -> StoreResult<Option<SmartLibrary>> {
        self.1.run("smart_library", self.0.smart_library(id)).await
    }
    async fn smart_library_subscribers(&self, id: u64, p: &PageRequest) -> StoreResult<Page<UserId>> {
        self.1.run("smart_library_subscribers", self.0.smart_library_subscribers(id, p)).await
    }
    async fn asset(&self, id: u64) -> StoreResult<Option<Asset>> {
        self.1.run("asset", self.0.asset(id)).await
    }
    async fn asset_members(&self, id: u64, p: &PageRequest) -> StoreResult<Page<UserId>> {
        self.1.run("asset_members", self.0.asset_members(id, p)).await
    }
    async fn asset_unsubscribes(&self, id: u64) -> StoreResult<Vec<Unsubscribe>> {
        self.1.run("asset_unsubscribes", self.0.asset_unsubscribes(id)).await
    }
    async fn touch_asset(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.1.run("touch_asset", self.0.touch_asset(id, at)).await
    }
    async fn touch_smart_library(&self, id: u64, at: DateTime<Utc>) -> StoreResult<()> {
        self.1.run("touch_smart_library", self.0.touch_smart_library(id, at)).await
    }
}

#[async_trait]
impl EmailPreferences for FaultyDirectory {
    async fn unsubscribe_emails(&self, asset: u64, u: UserId) -> StoreResult<()> {
        self.1.run("unsubscribe_emails", self.0.unsubscribe_emails(asset, u)).await
    }
    async fn suppress_email(&self, s: &EmailSuppression) -> StoreResult<()> {
        self.1.run("suppress_email", self.0.suppress_email(s)).await
    }
    async fn email_suppressions(&self, a: &[String]) -> StoreResult<Vec<EmailSuppression>> {
        self.1.run("email_suppressions", self.0.email_suppressions(a)).await
    }
}

#[async_trait]
impl DirectoryLoad for FaultyDirectory {
    async fn load(&self, s: &DirectorySnapshot) -> StoreResult<()> {
        self.0.load(s).await
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send_all(&self, bodies: &[String]) -> StoreResult<()> {
        self.1.pause().await;
        if let Err(e) = self.1.check("send_all") {
            // Some entries of a failing batch may have been accepted.
            let sent = self.1.partial("send_all", bodies.len());
            if !self.1.crashed() {
                self.0.send_all(&bodies[..sent]).await?;
            }
            return Err(e);
        }
        self.0.send_all(bodies).await
    }
    async fn send_later(&self, body: &str, delay: std::time::Duration) -> StoreResult<()> {
        self.1.run("send_later", self.0.send_later(body, delay)).await
    }
    async fn receive(&self, max: usize) -> StoreResult<Vec<ReceivedMessage>> {
        self.1.run("receive", self.0.receive(max)).await
    }
    async fn ack(&self, r: &str) -> StoreResult<()> {
        self.1.run("ack", self.0.ack(r)).await
    }
    async fn nack(&self, r: &str) -> StoreResult<()> {
        self.1.run("nack", self.0.nack(r)).await
    }
}

pub struct FaultyDevices(pub Arc<dyn DeviceStore>, pub Arc<Faults>);
pub struct FaultyMailer(pub Arc<dyn Mailer>, pub Arc<Faults>);
pub struct FaultyPush(pub Arc<dyn PushGateway>, pub Arc<Faults>);

#[async_trait]
impl DeviceStore for FaultyDevices {
    async fn devices(&self, u: UserId) -> StoreResult<Vec<Device>> {
        self.1.run("devices", self.0.devices(u)).await
    }
    async fn devices_of(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, Vec<Device>)>> {
        self.1.run("devices_of", self.0.devices_of(users)).await
    }
    async fn put_device(&self, u: UserId, d: &Device, max: usize) -> StoreResult<Vec<Device>> {
        self.1.run("put_device", self.0.put_device(u, d, max)).await
    }
    async fn remove_device(&self, u: UserId, id: &str) -> StoreResult<Option<Device>> {
        self.1.run("remove_device", self.0.remove_device(u, id)).await
    }
    async fn mark_company_devices(&self, c: CompanyId) -> StoreResult<()> {
        self.1.run("mark_company_devices", self.0.mark_company_devices(c)).await
    }
    async fn company_has_devices(&self, c: CompanyId) -> StoreResult<bool> {
        self.1.run("company_has_devices", self.0.company_has_devices(c)).await
    }
}

/// Email and push fail before the provider took the message (throttling, 5xx): a timeout after
/// SES or SNS accepted one cannot be told from one before, and neither takes an idempotency
/// key, so that window is the providers' and not injected here.
fn send_fault(faults: &Faults, op: &str) -> Result<(), SendError> {
    faults.check(op).map_err(|e| SendError::Transient(e.to_string()))
}

#[async_trait]
impl Mailer for FaultyMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError> {
        self.1.pause().await;
        send_fault(&self.1, "send_email")?;
        self.0.send(email).await
    }
}

#[async_trait]
impl PushGateway for FaultyPush {
    fn supports(&self, p: Platform) -> bool {
        self.0.supports(p)
    }
    async fn create_endpoint(&self, p: Platform, token: &str, u: UserId) -> Result<String, SendError> {
        send_fault(&self.1, "create_endpoint")?;
        self.0.create_endpoint(p, token, u).await
    }
    async fn delete_endpoint(&self, e: &str) -> Result<(), SendError> {
        send_fault(&self.1, "delete_endpoint")?;
        self.0.delete_endpoint(e).await
    }
    async fn publish(&self, e: &str, p: Platform, m: &PushMessage) -> Result<String, SendError> {
        self.1.pause().await;
        send_fault(&self.1, "publish")?;
        self.0.publish(e, p, m).await
    }
}

/// The same ports with every store, queue and provider behind `faults`.
pub fn faulty(ports: &Ports, faults: &Arc<Faults>) -> Ports {
    let mut p = ports.clone();
    p.notifications = Arc::new(FaultyNotifications(ports.notifications.clone(), faults.clone()));
    p.inbox = Arc::new(FaultyInbox(ports.inbox.clone(), faults.clone()));
    p.directory = Arc::new(FaultyDirectory(ports.directory.clone(), faults.clone()));
    p.fanout_queue = Arc::new(FaultyQueue(ports.fanout_queue.clone(), faults.clone()));
    p.delivery_queue = Arc::new(FaultyQueue(ports.delivery_queue.clone(), faults.clone()));
    p.email_queue = Arc::new(FaultyQueue(ports.email_queue.clone(), faults.clone()));
    p.devices = Arc::new(FaultyDevices(ports.devices.clone(), faults.clone()));
    p.mailer = Arc::new(FaultyMailer(ports.mailer.clone(), faults.clone()));
    p.push = Arc::new(FaultyPush(ports.push.clone(), faults.clone()));
    p
}
