//! A person's center: a notification's content written once, an entry per recipient, reads in
//! display order, marks; and the realtime side: who is connected, and telling them what changed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::model::*;
use crate::ports::Clock;

/// Delivery's part of the inbox: a notification's content, once, and its recipients' entries.
#[async_trait]
pub trait InboxDelivery: Send + Sync {
    /// Stores a notification's content, once for all its recipients (writing it again writes
    /// the same; never over a correction, `correct_content`). Written before any entry refers to
    /// it.
    async fn put_content(&self, content: &InboxContent) -> StoreResult<()>;
    /// Writes recipients' entries (any number; batched by the adapter). Keys are (user,
    /// notification): writing an entry again leaves one entry, the last written. Only for entries
    /// nobody can have yet (a chunk's first attempt): it replaces what a person did.
    ///
    /// Each entry is delivered when its write is sent: its `delivered_at` is the later of the
    /// entry's and `stamp`'s time as each attempt goes out. An entry held up by throttling for
    /// seconds is so never dated long before it lands, where a mark-all meanwhile (a watermark
    /// covers what was delivered at or before it) would mark it before anyone could see it.
    async fn put_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<()>;
    /// Writes the entries their people do not have yet; an entry a person has is left exactly
    /// as it is (their marks, its delivery time). Whose were written. For a chunk's later
    /// attempts: one conditional write per entry. Stamped as [`InboxDelivery::put_entries`].
    async fn put_new_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<Vec<UserId>>;
    /// Replaces a notification's content with its correction at `revision` (the notification's),
    /// unless a later revision's is stored already: of corrections written out of order, the
    /// last one made stays.
    async fn correct_content(&self, content: &InboxContent, revision: u64) -> StoreResult<()>;
    /// Removes these entries (by their keys: their person and display key; no read), with
    /// whatever their people did with them; an entry nobody has is no error. Batched.
    async fn remove_entries(&self, entries: &[InboxEntry]) -> StoreResult<()>;
}

/// A person's center as they read and mark it.
#[async_trait]
pub trait Center: Send + Sync {
    /// One notification of a person, with its content and state, whatever its state.
    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>>;
    /// The notifications `query` admits at `now` (never dismissed or expired ones), in display
    /// order, with their content joined. Each answer reads a bounded part of the person's
    /// entries, whatever their number (the default view: one query and one batch read): a page
    /// of a view few entries pass may hold fewer than its limit, even none, with a `next`
    /// position to go on from. Following `next` to its end gives each admitted entry once.
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
    /// Marks a person's whole inbox: one write, whatever its size. Each watermark only moves
    /// forward ([`MarkAll::apply`]).
    async fn mark_all(&self, user: UserId, mark: MarkAll, at: DateTime<Utc>) -> StoreResult<()>;
}

/// The whole inbox store (the Inbox table's adapter; the composition roots hold it).
pub trait InboxStore: InboxDelivery + Center {}
impl<T: InboxDelivery + Center + ?Sized> InboxStore for T {}

/// A person's open realtime connections: told what changed in their center. Best effort by
/// design: a client that missed an event catches up from its last cursor, so a failure here
/// never fails a delivery or a mark.
#[async_trait]
pub trait Realtime: Send + Sync {
    /// One event, at `cursor`, for each of `users`, people of `company` (a delivered chunk tells
    /// all its recipients the same thing: nothing is built per recipient before anyone listens).
    async fn publish(&self, company: CompanyId, users: &[UserId], cursor: i64, event: &InboxEvent);
    /// Whether `user`, a person of `company`, may have an open connection at `at` (an event
    /// that costs a read to build is built only then).
    async fn listening(&self, company: CompanyId, user: UserId, at: DateTime<Utc>) -> bool;
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
    async fn listening(&self, _: CompanyId, _: UserId, _: DateTime<Utc>) -> bool {
        false
    }
}
