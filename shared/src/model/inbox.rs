//! The recipient's side. A notification's content is stored once ([`InboxContent`]); each
//! recipient has a small entry of their own ([`InboxEntry`]: where it sorts, when it expires,
//! and what they did with it), and a person's marks over everything at once are watermarks
//! ([`Watermarks`]). What a person sees is the join ([`InboxItem`]) and its state
//! ([`ItemState`]), computed here by one rule for every store.
//!
//! Invariants:
//! - An entry's key is (user, notification): a redelivered chunk overwrites, never duplicates.
//! - The display order is High before Normal, then newest first, then id: the order key's text
//!   sorts exactly so, and stores keep entries in that order.
//! - Marking everything seen, read or archived is one write (a watermark); an entry delivered at
//!   or before a watermark is marked by it unless the person undid that mark on the entry after
//!   the watermark was set. An explicit mark on the entry always counts.
//! - Dismissal is final (the spec's "until the recipient dismisses them"): a dismissed entry is
//!   in no view and takes no other mark. Archiving is reversible: archived entries leave the
//!   default view and are listed with `status=archived`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{InboxContent, NotificationId, Priority, UserId};

impl InboxContent {
    /// The place of this notification in every recipient's center.
    pub fn order(&self) -> OrderKey {
        OrderKey::new(self.priority, self.created_at, self.notification_id)
    }

    /// The recipient's entry for this content, delivered at `at`.
    pub fn entry_for(&self, user: UserId, at: DateTime<Utc>) -> InboxEntry {
        InboxEntry::delivered(
            self.notification_id,
            self.priority,
            (self.created_at, self.expires_at),
            user,
            at,
        )
    }
}

/// The display order of an entry: priority rank (High 0, Normal 1), the creation time inverted
/// (newer first), the id (a total order, so paging is stable). Its text form
/// `{rank}#{inverted:013}#{id}` sorts as the tuple does (one digit, fixed width, a lowercase
/// UUID sorting as its bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    pub rank: u8,
    pub inverted: u64,
    pub id: NotificationId,
}

/// The largest inverted timestamp of an order key: 13 digits hold every millisecond until the
/// year 2286.
const LATEST_MILLIS: u64 = 9_999_999_999_999;

impl OrderKey {
    pub fn new(priority: Priority, created_at: DateTime<Utc>, id: NotificationId) -> Self {
        OrderKey { rank: Self::rank(priority), inverted: Self::invert(created_at), id }
    }

    pub fn rank(priority: Priority) -> u8 {
        match priority {
            Priority::High => 0,
            Priority::Normal => 1,
        }
    }

    /// Every rank, in display order.
    pub const RANKS: [u8; 2] = [0, 1];

    /// A time as the key's inverted, fixed-width milliseconds.
    pub fn invert(at: DateTime<Utc>) -> u64 {
        let millis = (at.timestamp_millis().max(0) as u64).min(LATEST_MILLIS);
        LATEST_MILLIS - millis
    }

    pub fn priority(&self) -> Priority {
        if self.rank == 0 { Priority::High } else { Priority::Normal }
    }

    /// The creation time, to the millisecond.
    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis((LATEST_MILLIS - self.inverted) as i64).unwrap_or_default()
    }

    /// `{rank}#{inverted:013}#{id}`.
    pub fn text(&self) -> String {
        format!("{}#{:013}#{}", self.rank, self.inverted, self.id)
    }

    /// The key back from its text (a cursor, a sort key); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '#');
        let rank: u8 = parts.next()?.parse().ok()?;
        let inverted = parts.next()?;
        let id = parts.next()?;
        if rank > 1 || inverted.len() != 13 || !inverted.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: NotificationId = id.parse().ok()?;
        let key = OrderKey { rank, inverted: inverted.parse().ok()?, id };
        // Only the canonical spelling: the text is a store's key.
        (key.text() == text).then_some(key)
    }

    /// The text bounds of the keys of `rank` created after `since` (both inclusive; no key
    /// equals a bound, which has no id): one contiguous range per rank.
    pub fn created_after(rank: u8, since: DateTime<Utc>) -> (String, String) {
        (format!("{rank}#"), format!("{rank}#{:013}", Self::invert(since)))
    }

    /// The text bounds of the keys of `rank` created at or before `at` (both inclusive): one
    /// contiguous range per rank, the complement of [`OrderKey::created_after`].
    pub fn created_by(rank: u8, at: DateTime<Utc>) -> (String, String) {
        (format!("{rank}#{:013}#", Self::invert(at)), format!("{rank}#~"))
    }
}

/// What a recipient did with one notification, each the time they did it. `read_at`/`unread_at`
/// and `archived_at`/`unarchived_at` exclude each other: the later action removes the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marks {
    pub seen_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub unread_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
    pub unarchived_at: Option<DateTime<Utc>>,
    pub dismissed_at: Option<DateTime<Utc>>,
}

/// One mark on one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    Seen,
    /// Read implies seen.
    Read,
    Unread,
    Archived,
    Unarchived,
    Dismissed,
}

impl Mark {
    pub const ALL: [Mark; 6] =
        [Mark::Seen, Mark::Read, Mark::Unread, Mark::Archived, Mark::Unarchived, Mark::Dismissed];

    /// Its name: the last segment of its route, and its name in realtime events.
    pub fn name(self) -> &'static str {
        match self {
            Mark::Seen => "seen",
            Mark::Read => "read",
            Mark::Unread => "unread",
            Mark::Archived => "archive",
            Mark::Unarchived => "unarchive",
            Mark::Dismissed => "dismiss",
        }
    }

    /// The marks after this one at `at`. Marking twice keeps the first time (idempotent), but
    /// for undoing, which keeps the latest.
    pub fn apply(self, marks: &mut Marks, at: DateTime<Utc>) {
        match self {
            Mark::Seen => {
                marks.seen_at.get_or_insert(at);
            }
            Mark::Read => {
                marks.seen_at.get_or_insert(at);
                marks.read_at.get_or_insert(at);
                marks.unread_at = None;
            }
            // Undoing keeps the latest time: it must be later than a watermark set after an
            // earlier undo.
            Mark::Unread => {
                marks.read_at = None;
                marks.unread_at = Some(at);
            }
            Mark::Archived => {
                marks.archived_at.get_or_insert(at);
                marks.unarchived_at = None;
            }
            Mark::Unarchived => {
                marks.archived_at = None;
                marks.unarchived_at = Some(at);
            }
            Mark::Dismissed => {
                marks.dismissed_at.get_or_insert(at);
            }
        }
    }
}

/// Marks over a person's whole inbox, one write each whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkAll {
    Seen,
    /// Everything read (and seen); with `archive`, archived too.
    Read {
        archive: bool,
    },
}

/// A person's watermarks: everything delivered at or before one of them carries its mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watermarks {
    pub seen_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub archived_at: Option<DateTime<Utc>>,
}

impl MarkAll {
    /// Its name in realtime events.
    pub fn name(self) -> &'static str {
        match self {
            MarkAll::Seen => "seen",
            MarkAll::Read { archive: false } => "read",
            MarkAll::Read { archive: true } => "read+archive",
        }
    }

    /// The watermarks after this mark at `at`. Each only ever moves forward: a mark-all timed
    /// by a clock behind the one that set a watermark leaves it where it is (moved back, it would
    /// uncover what the person had already marked).
    pub fn apply(self, w: &mut Watermarks, at: DateTime<Utc>) {
        let forward = |mark: &mut Option<DateTime<Utc>>| {
            if mark.is_none_or(|m| m < at) {
                *mark = Some(at);
            }
        };
        forward(&mut w.seen_at);
        if let MarkAll::Read { archive } = self {
            forward(&mut w.read_at);
            if archive {
                forward(&mut w.archived_at);
            }
        }
    }
}

/// The recipient's own record of one notification: small (about 200 bytes stored), so that a
/// delivery writes one unit whatever the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxEntry {
    pub user_id: UserId,
    pub notification_id: NotificationId,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it reached this person (watermarks compare with it: an entry delivered after
    /// "mark all read" is unread, whatever its creation time).
    pub delivered_at: DateTime<Utc>,
    pub marks: Marks,
}

impl InboxEntry {
    /// A person's entry for a notification, delivered at `at`, with nothing done to it yet:
    /// no content, so one write unit whatever the notification says.
    pub fn delivered(
        notification_id: NotificationId,
        priority: Priority,
        (created_at, expires_at): (DateTime<Utc>, DateTime<Utc>),
        user_id: UserId,
        at: DateTime<Utc>,
    ) -> Self {
        InboxEntry {
            user_id,
            notification_id,
            priority,
            created_at,
            expires_at,
            delivered_at: at,
            marks: Marks::default(),
        }
    }

    pub fn order(&self) -> OrderKey {
        OrderKey::new(self.priority, self.created_at, self.notification_id)
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// The entry's state under the person's watermarks.
    pub fn state(&self, w: &Watermarks) -> ItemState {
        let covered = |mark: Option<DateTime<Utc>>| mark.is_some_and(|at| self.delivered_at <= at);
        // On if marked on; else on if a watermark covers it and it was not turned off after it
        // (an undo in the watermark's own millisecond counts as before it).
        let state = |on: Option<DateTime<Utc>>, off: Option<DateTime<Utc>>, mark: Option<DateTime<Utc>>| {
            on.is_some() || (covered(mark) && off.is_none_or(|off| mark.is_some_and(|m| off <= m)))
        };
        let m = &self.marks;
        ItemState {
            seen: m.seen_at.is_some() || covered(w.seen_at),
            read: state(m.read_at, m.unread_at, w.read_at),
            archived: state(m.archived_at, m.unarchived_at, w.archived_at),
            dismissed: m.dismissed_at.is_some(),
        }
    }
}

/// What a person sees of one notification: read implies seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemState {
    pub seen: bool,
    pub read: bool,
    pub archived: bool,
    pub dismissed: bool,
}

/// One notification as its recipient sees it: their entry, its content, its state.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub entry: InboxEntry,
    pub content: InboxContent,
    pub state: ItemState,
}

/// Which notifications a read of the center returns. Dismissed and expired ones never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum StatusFilter {
    /// Not archived (the center as it opens).
    #[default]
    Inbox,
    /// Not archived, not read.
    Unread,
    /// Not archived, not seen.
    Unseen,
    /// Not archived, read.
    Read,
    /// Archived only.
    Archived,
    /// Archived or not.
    All,
}

impl StatusFilter {
    pub const ALL: [StatusFilter; 6] = [
        StatusFilter::Inbox,
        StatusFilter::Unread,
        StatusFilter::Unseen,
        StatusFilter::Read,
        StatusFilter::Archived,
        StatusFilter::All,
    ];

    /// The one rule of which entries a view shows, for every store.
    pub fn admits(self, state: &ItemState) -> bool {
        if state.dismissed {
            return false;
        }
        match self {
            StatusFilter::Inbox => !state.archived,
            StatusFilter::Unread => !state.archived && !state.read,
            StatusFilter::Unseen => !state.archived && !state.seen,
            StatusFilter::Read => !state.archived && state.read,
            StatusFilter::Archived => state.archived,
            StatusFilter::All => true,
        }
    }
}

/// How the notification center is read: always in display order (High first, then newest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InboxQuery {
    pub status: StatusFilter,
    /// Only notifications delivered to the person after this instant, whenever they were
    /// created: a poller that moves `since` to the time of its last poll misses nothing
    /// delivered after it (a scheduled send, a chunk retried minutes or days later).
    pub since: Option<DateTime<Utc>>,
    /// Only notifications delivered to the person at or after this instant: what a realtime
    /// client missed while away, from the cursor of the last event it saw (inclusive, because
    /// two deliveries can share a millisecond; ids make the repeat harmless).
    pub delivered_since: Option<DateTime<Utc>>,
}

impl InboxQuery {
    pub fn ordered() -> Self {
        InboxQuery::default()
    }

    pub fn since(at: DateTime<Utc>) -> Self {
        InboxQuery { since: Some(at), ..Self::default() }
    }

    /// The earliest delivery this read keeps (the later of `since`, exclusive, and
    /// `delivered_since`, inclusive), if it is bounded so.
    pub fn delivered_from(&self) -> Option<DateTime<Utc>> {
        match (self.since, self.delivered_since) {
            (None, None) => None,
            (Some(s), None) => Some(s),
            (None, Some(d)) => Some(d),
            (Some(s), Some(d)) => Some(s.max(d)),
        }
    }

    /// Whether an entry delivered at `delivered` is after this read's bounds.
    pub fn delivered_in(&self, delivered: DateTime<Utc>) -> bool {
        let ms = delivered.timestamp_millis();
        self.since.is_none_or(|s| ms > s.timestamp_millis())
            && self.delivered_since.is_none_or(|a| ms >= a.timestamp_millis())
    }

    /// Whether an entry is in this read at `now`, under the person's watermarks.
    pub fn admits(&self, entry: &InboxEntry, w: &Watermarks, now: DateTime<Utc>) -> bool {
        !entry.is_expired(now) && self.delivered_in(entry.delivered_at) && self.status.admits(&entry.state(w))
    }
}

/// Where the entries a view admits are, under the person's watermarks: a store reads these
/// sets (each in display order) instead of walking every entry, so a view the entries rarely
/// pass (what is unread after "mark all read", what was archived one by one) costs what it
/// shows, not the size of the inbox. Every entry the query admits is in at least one of them;
/// an entry in one is still kept only by [`InboxQuery::admits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Candidates {
    /// Every entry.
    Every,
    /// The entries delivered at or after this instant.
    DeliveredFrom(DateTime<Utc>),
    /// The entries created at or before this instant. [`InboxQuery::candidates`] names it
    /// [`CLOCK_SKEW`] after a watermark, for every entry the watermark covers: an entry is
    /// delivered after its creation, by clocks (the sender's function's, the deliverer's) that
    /// may differ by milliseconds.
    CreatedBy(DateTime<Utc>),
    /// The entries a person marked so one by one (`Read`, `Unread`, `Archived`, `Unarchived`):
    /// a store keeps a marker of each such mark at least while the entry carries it.
    Marked(Mark),
}

impl Candidates {
    /// Whether `entry` is in this set (what a store's read of it finds).
    pub fn holds(&self, entry: &InboxEntry) -> bool {
        match *self {
            Candidates::Every => true,
            Candidates::DeliveredFrom(from) => entry.delivered_at >= from,
            Candidates::CreatedBy(at) => entry.created_at <= at,
            Candidates::Marked(mark) => mark.carried_by(&entry.marks),
        }
    }
}

impl Mark {
    /// Whether a store keeps a marker of this mark ([`Candidates::Marked`]): the marks a view's
    /// candidates name. Seen needs none (no view lists the seen ones), dismissal none (dismissed
    /// entries are in no view).
    pub fn is_marked_apart(self) -> bool {
        matches!(self, Mark::Read | Mark::Unread | Mark::Archived | Mark::Unarchived)
    }

    /// Whether an entry's marks carry this mark (its marker is then kept).
    pub fn carried_by(self, m: &Marks) -> bool {
        match self {
            Mark::Seen => m.seen_at.is_some(),
            Mark::Read => m.read_at.is_some(),
            Mark::Unread => m.unread_at.is_some(),
            Mark::Archived => m.archived_at.is_some(),
            Mark::Unarchived => m.unarchived_at.is_some(),
            Mark::Dismissed => m.dismissed_at.is_some(),
        }
    }
}

/// How far apart the clocks of two functions may be, at most (AWS keeps them within
/// milliseconds; a second is far more).
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(1);

/// The instant after a watermark: what it does not cover was delivered at or after it.
fn after(mark: DateTime<Utc>) -> DateTime<Utc> {
    mark + chrono::Duration::milliseconds(1)
}

impl InboxQuery {
    /// Where the entries this query admits are, under `w` ([`Candidates`]): the smallest sets
    /// the rule of [`ItemState`] allows.
    /// - Bounded by delivery: what was delivered from then on.
    /// - Not archived (inbox, unread, unseen, read): after an archive watermark, what it does not
    ///   cover (delivered after it) and what was unarchived one by one since; unread, likewise
    ///   after a read watermark with what was marked unread; unseen after a seen watermark (a
    ///   seen mark is never undone). The latest watermark gives the fewest.
    /// - Read: what was read one by one, and what a read watermark covers (after an archive
    ///   watermark, what is not archived); archived: what was archived one by one, and what an
    ///   archive watermark covers.
    pub fn candidates(&self, w: &Watermarks) -> Vec<Candidates> {
        use Candidates::*;
        if let Some(from) = self.delivered_from() {
            return vec![DeliveredFrom(from)];
        }
        // What a watermark does not cover was delivered after it, or carries the undo of its mark.
        let uncovered = |watermark: Option<DateTime<Utc>>, undo: Option<Mark>| {
            watermark.map(|at| (at, [Some(DeliveredFrom(after(at))), undo.map(Marked)]))
        };
        // The later watermark leaves the fewer uncovered (a tie: the first named).
        let latest = |first, other| [other, first].into_iter().flatten().max_by_key(|(at, _)| *at);
        // What a mark carries: marked so one by one, or covered by its watermark.
        let carried = |watermark: Option<DateTime<Utc>>, mark| {
            watermark.map(|at| CreatedBy(at + CLOCK_SKEW)).into_iter().chain([Marked(mark)]).collect()
        };
        let not_archived = uncovered(w.archived_at, Some(Mark::Unarchived));
        let sets = match self.status {
            StatusFilter::All => None,
            StatusFilter::Inbox => not_archived,
            StatusFilter::Unread => latest(uncovered(w.read_at, Some(Mark::Unread)), not_archived),
            StatusFilter::Unseen => latest(uncovered(w.seen_at, None), not_archived),
            // Read and not archived: after an archive watermark, what is not archived (what it
            // covers, the person's archived history, is the bulk of an inbox).
            StatusFilter::Read if not_archived.is_some() => not_archived,
            StatusFilter::Read => return carried(w.read_at, Mark::Read),
            StatusFilter::Archived => return carried(w.archived_at, Mark::Archived),
        };
        match sets {
            Some((_, sets)) => sets.into_iter().flatten().collect(),
            None => vec![Every],
        }
    }
}

/// How far back a catch-up by delivery time (`since`, `deliveredSince`) reaches: a page away
/// longer (a laptop closed overnight) is answered with the view as it is now and told to resync,
/// rather than read through everything delivered since.
pub const CATCH_UP_WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl InboxQuery {
    /// The read this query makes at `now`, and whether it is a resync: a catch-up by delivery
    /// time from further back than [`CATCH_UP_WINDOW`] reads the view as it is now instead (the
    /// reader replaces what it shows with the answer).
    pub fn at(&self, now: DateTime<Utc>) -> (InboxQuery, bool) {
        match self.delivered_from() {
            Some(from) if from < now - CATCH_UP_WINDOW => {
                (InboxQuery { status: self.status, ..Self::default() }, true)
            }
            _ => (self.clone(), false),
        }
    }
}

/// How far back a poller's next `since` reaches ([`next_since`]): an entry is dated when its
/// write request goes out, and lands within that request, well within a minute.
pub const SINCE_OVERLAP_SECONDS: i64 = 60;

/// What a poller passes as `since` next, answered with each read of the center: the server's
/// time [`SINCE_OVERLAP_SECONDS`] back. Whatever the poller's own clock says, and however long an
/// entry's write was in flight, nothing delivered after the answer is missed; ids make the
/// repeats harmless.
pub fn next_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::seconds(SINCE_OVERLAP_SECONDS)
}

/// What changed in a person's center, told to their open realtime connections. Every event
/// carries a cursor (milliseconds of the change): a client that reconnects asks for what was
/// delivered after the last cursor it saw, so it misses nothing; ids make repeats harmless.
///
/// An event carries what an open page needs to apply it without a read (a delivery to many
/// people with their pages open must not become as many reads of the center): a delivery its
/// notification's content (the same for every recipient, who has it unseen and unread), a mark
/// the person's counts after it. What an event cannot carry (a catch-up of several
/// notifications; counts not read) the page reads, once, with jitter.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxEvent {
    /// Notifications arrived; with its content when it is one notification.
    New { ids: Vec<NotificationId>, content: Option<Box<InboxContent>> },
    /// One notification was marked (`seen`, `read`, `unread`, `archive`, `unarchive`, `dismiss`):
    /// its state after the mark follows from the mark alone; the counts are the person's after it.
    Marked { id: NotificationId, mark: String, counts: Option<InboxCounts> },
    /// Everything delivered up to `through` (milliseconds) was marked (`seen`, `read`,
    /// `read+archive`); the counts are the person's after it.
    MarkedAll { mark: String, through: i64, counts: Option<InboxCounts> },
    /// Its sender retracted a notification: it is no longer in the person's center.
    Retracted { id: NotificationId },
    /// Its sender corrected a notification: what every center shows of it now (the person's
    /// state of it is theirs, unchanged).
    Corrected { content: Box<InboxContent> },
    /// More changed than one event tells (a connection's catch-up from further back than
    /// [`CATCH_UP_WINDOW`], or more than a page of it): the page reads its view again.
    Resync,
}

impl InboxEvent {
    /// A delivery of one notification, with what its recipients see of it.
    pub fn delivered(content: &InboxContent) -> Self {
        InboxEvent::New { ids: vec![content.notification_id], content: Some(Box::new(content.clone())) }
    }

    /// Its name on the wire (`new`, `marked`, `markedAll`).
    pub fn kind(&self) -> &'static str {
        match self {
            InboxEvent::New { .. } => "new",
            InboxEvent::Marked { .. } => "marked",
            InboxEvent::MarkedAll { .. } => "markedAll",
            InboxEvent::Retracted { .. } => "retracted",
            InboxEvent::Corrected { .. } => "corrected",
            InboxEvent::Resync => "resync",
        }
    }
}

/// An event for one person, at its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub user: UserId,
    pub cursor: i64,
    pub event: InboxEvent,
}

/// The badge: how many notifications of the default view are unread and unseen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InboxCounts {
    pub unread: u64,
    pub unseen: u64,
    /// `false` when the person has more than the counted window of entries: the counts are then
    /// those of the first [`COUNT_WINDOW`] in display order (a lower bound).
    pub exact: bool,
}

/// Entries a count reads at most, in display order. A bounded read, not a counter: a counter
/// would cost a second write per delivered person. At about 200 bytes an entry, a full window
/// is 40 KB, 10 read units strongly consistent.
pub const COUNT_WINDOW: usize = 200;

impl InboxCounts {
    /// Adds one entry's state (not dismissed, not expired) to the counts.
    pub fn add(&mut self, state: &ItemState) {
        if StatusFilter::Unread.admits(state) {
            self.unread += 1;
        }
        if StatusFilter::Unseen.admits(state) {
            self.unseen += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn entry(delivered: DateTime<Utc>) -> InboxEntry {
        InboxEntry {
            user_id: UserId::nil(),
            notification_id: NotificationId::nil(),
            priority: Priority::Normal,
            created_at: delivered,
            expires_at: delivered + Duration::days(14),
            delivered_at: delivered,
            marks: Marks::default(),
        }
    }

    /// Every entry a view admits is in one of the view's candidate sets, whatever the person
    /// did in whatever order: marks one by one, marks over everything, deliveries in between
    /// (some a little before their creation, as two functions' clocks may have it).
    #[test]
    fn every_admitted_entry_is_among_the_views_candidates() {
        use rand::{Rng, SeedableRng};
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let mut checked = 0;
        for seed in 0..400u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut now = t;
            let mut w = Watermarks::default();
            let mut entries: Vec<InboxEntry> = Vec::new();
            for _ in 0..rng.random_range(1..40) {
                now += Duration::milliseconds(rng.random_range(0..3_000));
                match rng.random_range(0..10) {
                    0..=3 => {
                        let mut e = entry(now);
                        e.created_at = now - Duration::milliseconds(rng.random_range(-500..7_200_000));
                        entries.push(e);
                    }
                    4..=7 if !entries.is_empty() => {
                        let i = rng.random_range(0..entries.len());
                        let mark = Mark::ALL[rng.random_range(0..Mark::ALL.len())];
                        mark.apply(&mut entries[i].marks, now);
                    }
                    _ => {
                        let all = [
                            MarkAll::Seen,
                            MarkAll::Read { archive: false },
                            MarkAll::Read { archive: true },
                        ];
                        all[rng.random_range(0..all.len())].apply(&mut w, now);
                    }
                }
            }
            for status in StatusFilter::ALL {
                let bounds = [None, Some(t + Duration::milliseconds(rng.random_range(0..30_000)))];
                for (since, delivered_since) in [(None, None), (bounds[1], None), (None, bounds[1])] {
                    let query = InboxQuery { status, since, delivered_since };
                    let sets = query.candidates(&w);
                    assert!(!sets.is_empty());
                    for e in entries.iter().filter(|e| query.admits(e, &w, now)) {
                        checked += 1;
                        assert!(
                            sets.iter().any(|c| c.holds(e)),
                            "seed {seed}: {query:?} admits {e:?} under {w:?}, outside {sets:?}"
                        );
                    }
                }
            }
        }
        assert!(checked > 10_000, "the runs admitted entries to check ({checked})");
    }

    #[test]
    fn a_view_after_a_watermark_reads_what_it_does_not_cover() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let mut w = Watermarks::default();
        let unread = InboxQuery { status: StatusFilter::Unread, ..InboxQuery::default() };
        assert_eq!(unread.candidates(&w), vec![Candidates::Every], "nothing marked: every entry");
        MarkAll::Read { archive: false }.apply(&mut w, t);
        let after = t + Duration::milliseconds(1);
        assert_eq!(
            unread.candidates(&w),
            vec![Candidates::DeliveredFrom(after), Candidates::Marked(Mark::Unread)]
        );
        let archived = InboxQuery { status: StatusFilter::Archived, ..InboxQuery::default() };
        assert_eq!(archived.candidates(&w), vec![Candidates::Marked(Mark::Archived)]);
        MarkAll::Read { archive: true }.apply(&mut w, t + Duration::seconds(5));
        assert_eq!(
            archived.candidates(&w),
            vec![
                Candidates::CreatedBy(t + Duration::seconds(5) + CLOCK_SKEW),
                Candidates::Marked(Mark::Archived)
            ]
        );
        let later = t + Duration::seconds(5) + Duration::milliseconds(1);
        assert_eq!(
            unread.candidates(&w),
            vec![Candidates::DeliveredFrom(later), Candidates::Marked(Mark::Unread)],
            "the later watermark, the fewer candidates (a tie: the read one)"
        );
        // Delivered a moment before its creation by another function's clock, then covered.
        let mut skewed = entry(t + Duration::seconds(10));
        skewed.created_at = skewed.delivered_at + Duration::milliseconds(300);
        let covering = t + Duration::seconds(10) + Duration::milliseconds(100);
        for (view, archive) in [(StatusFilter::Archived, true), (StatusFilter::Read, false)] {
            let mut w = Watermarks::default();
            MarkAll::Read { archive }.apply(&mut w, covering);
            let query = InboxQuery { status: view, ..InboxQuery::default() };
            assert!(query.admits(&skewed, &w, t), "{view:?}");
            assert!(query.candidates(&w).iter().any(|c| c.holds(&skewed)), "{view:?}");
        }
        let polled = InboxQuery { since: Some(t), ..unread };
        assert_eq!(polled.candidates(&w), vec![Candidates::DeliveredFrom(t)]);
    }

    #[test]
    fn order_keys_sort_as_their_text_and_round_trip() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let a = OrderKey::new(Priority::High, t, uuid::Uuid::from_u128(2));
        let b = OrderKey::new(Priority::Normal, t + Duration::seconds(1), uuid::Uuid::from_u128(1));
        let c = OrderKey::new(Priority::Normal, t, uuid::Uuid::from_u128(1));
        let mut keys = vec![c, b, a];
        keys.sort();
        assert_eq!(keys, vec![a, b, c], "High first, then newest");
        let mut texts: Vec<String> = [c, b, a].iter().map(OrderKey::text).collect();
        texts.sort();
        assert_eq!(texts, keys.iter().map(OrderKey::text).collect::<Vec<_>>());
        for k in keys {
            assert_eq!(OrderKey::parse(&k.text()), Some(k));
        }
        assert_eq!(a.created_at(), t);
        assert_eq!(a.priority(), Priority::High);
        for bad in ["", "2#0000000000001#00000000-0000-0000-0000-000000000001", "0#1#x", "0#01#a", "x"] {
            assert_eq!(OrderKey::parse(bad), None, "{bad}");
        }
        let lettered = OrderKey::new(Priority::High, t, uuid::Uuid::from_u128(0xabcdef));
        assert_eq!(OrderKey::parse(&lettered.text().to_uppercase()), None, "only the canonical spelling");
    }

    #[test]
    fn created_after_bounds_hold_exactly_the_newer_keys() {
        let since = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let (lo, hi) = OrderKey::created_after(1, since);
        let key = |ms: i64| {
            OrderKey::new(Priority::Normal, DateTime::from_timestamp_millis(ms).unwrap(), uuid::Uuid::max())
                .text()
        };
        let inside = |k: &str| lo.as_str() <= k && k <= hi.as_str();
        assert!(inside(&key(1_700_000_000_001)));
        assert!(!inside(&key(1_700_000_000_000)), "created at `since` is not after it");
        assert!(!inside(&key(1_699_999_999_999)));
        assert!(!inside(&OrderKey::new(Priority::High, since + Duration::days(1), uuid::Uuid::nil()).text()));
    }

    #[test]
    fn watermarks_mark_what_was_delivered_before_them_unless_undone_since() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let early = entry(t);
        let late = entry(t + Duration::minutes(2));
        let mut w = Watermarks::default();
        MarkAll::Read { archive: false }.apply(&mut w, t + Duration::minutes(1));
        assert_eq!(early.state(&w), ItemState { seen: true, read: true, archived: false, dismissed: false });
        assert_eq!(late.state(&w), ItemState::default(), "delivered after the watermark");
        // Marked unread after the watermark: unread; marked read again: read.
        let mut undone = early.clone();
        Mark::Unread.apply(&mut undone.marks, t + Duration::minutes(3));
        assert!(!undone.state(&w).read && undone.state(&w).seen);
        // A later watermark covers the undo.
        let mut w2 = w;
        MarkAll::Read { archive: true }.apply(&mut w2, t + Duration::minutes(4));
        assert!(undone.state(&w2).read && undone.state(&w2).archived);
        Mark::Unarchived.apply(&mut undone.marks, t + Duration::minutes(5));
        assert!(!undone.state(&w2).archived);
        Mark::Archived.apply(&mut undone.marks, t + Duration::minutes(6));
        assert!(undone.state(&w2).archived);
        // Undone, covered by a later watermark, undone again: the last undo counts.
        Mark::Unread.apply(&mut undone.marks, t + Duration::minutes(7));
        assert!(!undone.state(&w2).read);
        let mut w3 = w2;
        MarkAll::Read { archive: false }.apply(&mut w3, t + Duration::minutes(8));
        assert!(undone.state(&w3).read);
        Mark::Unread.apply(&mut undone.marks, t + Duration::minutes(9));
        assert!(!undone.state(&w3).read, "a second undo after a watermark undoes it");
        // Explicit marks count whatever the watermarks.
        let mut one = late.clone();
        Mark::Read.apply(&mut one.marks, t + Duration::minutes(3));
        assert_eq!(
            one.state(&Watermarks::default()),
            ItemState { seen: true, read: true, ..ItemState::default() }
        );
        Mark::Read.apply(&mut one.marks, t + Duration::minutes(9));
        assert_eq!(one.marks.read_at, Some(t + Duration::minutes(3)), "marking twice keeps the first time");
        Mark::Dismissed.apply(&mut one.marks, t + Duration::minutes(10));
        for status in StatusFilter::ALL {
            assert!(!status.admits(&one.state(&w2)), "dismissed is in no view ({status:?})");
        }
    }

    #[test]
    fn watermarks_only_move_forward() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let mut w = Watermarks::default();
        MarkAll::Read { archive: true }.apply(&mut w, t);
        // A mark-all timed a moment earlier (another function's clock) moves nothing back ...
        MarkAll::Read { archive: false }.apply(&mut w, t - Duration::milliseconds(3));
        assert_eq!(w, Watermarks { seen_at: Some(t), read_at: Some(t), archived_at: Some(t) });
        // ... and moves forward only what it sets.
        MarkAll::Seen.apply(&mut w, t + Duration::seconds(1));
        assert_eq!(w.seen_at, Some(t + Duration::seconds(1)));
        assert_eq!((w.read_at, w.archived_at), (Some(t), Some(t)));
        let behind = entry(t - Duration::milliseconds(1));
        assert!(behind.state(&w).read && behind.state(&w).archived, "still covered");
    }

    #[test]
    fn views_split_the_states() {
        let states = [
            ItemState::default(),
            ItemState { seen: true, ..ItemState::default() },
            ItemState { seen: true, read: true, ..ItemState::default() },
            ItemState { seen: true, read: true, archived: true, ..ItemState::default() },
            ItemState { archived: true, ..ItemState::default() },
        ];
        let shown = |f: StatusFilter| states.iter().filter(|s| f.admits(s)).count();
        assert_eq!(shown(StatusFilter::Inbox), 3);
        assert_eq!(shown(StatusFilter::Unread), 2);
        assert_eq!(shown(StatusFilter::Unseen), 1);
        assert_eq!(shown(StatusFilter::Read), 1);
        assert_eq!(shown(StatusFilter::Archived), 2);
        assert_eq!(shown(StatusFilter::All), 5);
        let mut counts = InboxCounts::default();
        states.iter().for_each(|s| counts.add(s));
        assert_eq!((counts.unread, counts.unseen), (2, 1));
    }
}
