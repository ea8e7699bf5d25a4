//! The recipient's notification center: who may read it, and what a poll returns.

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::{Accounts, Center, Clock, Realtime};

/// What reading a center uses.
pub struct CenterReadDeps<'a> {
    pub(crate) accounts: &'a dyn Accounts,
    pub(crate) center: &'a dyn Center,
    pub(crate) clock: &'a dyn Clock,
}

/// What marking a center uses.
pub struct CenterMarkDeps<'a> {
    pub(crate) center: &'a dyn Center,
    pub(crate) realtime: &'a dyn Realtime,
    pub(crate) clock: &'a dyn Clock,
}

/// Owners read their own center; admins of the same tenant (and SUPER_USER) may read it for
/// support. Nobody else.
fn may_read(viewer: &User, owner: &User) -> bool {
    viewer.id == owner.id
        || viewer.has(Role::SuperUser)
        || (viewer.company_id == owner.company_id && viewer.has(Role::CompanyAdmin))
}

async fn owner(ports: &CenterReadDeps<'_>, viewer: &User, owner_id: UserId) -> Result<User, ApiError> {
    let forbidden =
        || ApiError::new(ErrorKind::InsufficientPermissions, "this is another user's notification center");
    if viewer.id == owner_id {
        return Ok(viewer.clone());
    }
    match ports.accounts.user(owner_id).await? {
        Some(owner) if may_read(viewer, &owner) => Ok(owner),
        Some(_) => Err(forbidden()),
        // Only someone who could read it learns that it does not exist.
        None if viewer.has(Role::SuperUser) || viewer.has(Role::CompanyAdmin) => {
            Err(ApiError::new(ErrorKind::NotFound, format!("user {owner_id} does not exist"))
                .with_parameter("userId"))
        }
        None => Err(forbidden()),
    }
}

/// A page of a center, and whether it is a resync ([`InboxQuery::at`]: the reader asked for what
/// was delivered since further back than the center catches up, and gets the view as it is).
/// A page may hold fewer than its limit with a `next` position: a store reads a bounded number
/// of entries per answer ([`crate::ports::Center::list`]).
pub async fn list(
    ports: &CenterReadDeps<'_>,
    viewer: &User,
    owner_id: UserId,
    query: &InboxQuery,
    page: &PageRequest,
) -> Result<(Page<InboxItem>, bool), ApiError> {
    let owner = owner(ports, viewer, owner_id).await?;
    let now = ports.clock.now();
    let (mut read, resync) = query.at(now);
    let bound = |q: &InboxQuery| format!("inbox:{}:{q:?}", owner.id);
    let opened = match super::cursor::open(&bound(&read), page) {
        // A page goes on as its first page read, whatever the clock says now (a catch-up paged
        // across its window's edge): a position of the query as asked reads it so.
        Err(e) if resync => {
            read = query.clone();
            super::cursor::open(&bound(query), page).map_err(|_| e)?
        }
        other => other?,
    };
    let got = ports.center.list(owner.id, &read, now, &opened).await?;
    // The first page of a resync says so (the reader replaces what it shows with it); the pages
    // after it go on.
    Ok((super::cursor::seal(&bound(&read), got), resync && page.after.is_none()))
}

/// The badge: unread and unseen counts of the center as it opens (a bounded read of the first
/// [`COUNT_WINDOW`] entries; `exact` says whether that was all of them).
pub async fn count(
    ports: &CenterReadDeps<'_>,
    viewer: &User,
    owner_id: UserId,
) -> Result<InboxCounts, ApiError> {
    let owner = owner(ports, viewer, owner_id).await?;
    Ok(ports.center.count(owner.id, ports.clock.now(), COUNT_WINDOW).await?)
}

/// Only the recipient marks their notifications: an admin may read a center for support, never
/// change what its owner has or has not read.
fn recipient_only(viewer: &User, owner_id: UserId) -> Result<(), ApiError> {
    if viewer.id != owner_id {
        return Err(ApiError::new(
            ErrorKind::InsufficientPermissions,
            "only the recipient may mark their notifications",
        ));
    }
    Ok(())
}

/// Marks one of the viewer's own notifications; marking twice is fine. Unknown, expired (and,
/// for every mark but dismissal, dismissed) notifications are not found.
pub async fn mark(
    ports: &CenterMarkDeps<'_>,
    viewer: &User,
    owner_id: UserId,
    id: NotificationId,
    mark: Mark,
) -> Result<(), ApiError> {
    recipient_only(viewer, owner_id)?;
    let now = ports.clock.now();
    if ports.center.mark(owner_id, id, mark, now).await? {
        // The person's other tabs and devices follow, their badges with them.
        let counts = counts_after(ports, viewer.company_id, owner_id, now).await;
        let event = InboxEvent::Marked { id, mark: mark.name().into(), counts };
        ports.realtime.publish(viewer.company_id, &[owner_id], now.timestamp_millis(), &event).await;
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::NotFound,
            format!("notification {id} is not in your notification center"),
        )
        .with_parameter("id"))
    }
}

/// Marks everything in the viewer's center at once: one write, whatever its size.
pub async fn mark_all(
    ports: &CenterMarkDeps<'_>,
    viewer: &User,
    owner_id: UserId,
    mark: MarkAll,
) -> Result<(), ApiError> {
    recipient_only(viewer, owner_id)?;
    let now = ports.clock.now();
    ports.center.mark_all(owner_id, mark, now).await?;
    let counts = counts_after(ports, viewer.company_id, owner_id, now).await;
    let event = InboxEvent::MarkedAll { mark: mark.name().into(), through: now.timestamp_millis(), counts };
    ports.realtime.publish(viewer.company_id, &[owner_id], now.timestamp_millis(), &event).await;
    Ok(())
}

/// The person's counts after a mark, for their open pages (one bounded read, as the badge's);
/// `None` when they could not be read: the mark stands, and the pages read the count themselves.
async fn counts_after(
    ports: &CenterMarkDeps<'_>,
    company: CompanyId,
    owner_id: UserId,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<InboxCounts> {
    // Nobody listening (an API client, a phone with no page open): no read for nobody.
    if !ports.realtime.listening(company, owner_id, now).await {
        return None;
    }
    match ports.center.count(owner_id, now, COUNT_WINDOW).await {
        Ok(counts) => Some(counts),
        Err(e) => {
            tracing::warn!(user = %owner_id, error = %e, "counts after a mark not read; pages read them");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::adapters::memory::{MemoryInboxStore, MemoryRealtime};
    use crate::error::StoreResult;
    use crate::ports::{InboxDelivery, ManualClock};

    /// The memory store, counting the counts it is asked for.
    #[derive(Default)]
    struct Counting(MemoryInboxStore, Mutex<usize>);

    #[async_trait]
    impl Center for Counting {
        async fn get(&self, u: UserId, n: NotificationId) -> StoreResult<Option<InboxItem>> {
            self.0.get(u, n).await
        }
        async fn list(
            &self,
            u: UserId,
            q: &InboxQuery,
            now: DateTime<Utc>,
            p: &PageRequest,
        ) -> StoreResult<Page<InboxItem>> {
            self.0.list(u, q, now, p).await
        }
        async fn count(&self, u: UserId, now: DateTime<Utc>, window: usize) -> StoreResult<InboxCounts> {
            *self.1.lock().unwrap() += 1;
            self.0.count(u, now, window).await
        }
        async fn mark(&self, u: UserId, n: NotificationId, m: Mark, at: DateTime<Utc>) -> StoreResult<bool> {
            self.0.mark(u, n, m, at).await
        }
        async fn mark_all(&self, u: UserId, m: MarkAll, at: DateTime<Utc>) -> StoreResult<()> {
            self.0.mark_all(u, m, at).await
        }
    }

    /// The center's owner, reading it.
    fn person() -> User {
        User {
            id: UserId::from_u128(7),
            number: 7,
            company_id: 3,
            email: String::new(),
            first_name: String::new(),
            roles: vec![],
        }
    }

    /// A mark costs a count read only when its person has a connection open to hear it.
    #[tokio::test]
    async fn counts_after_a_mark_are_read_only_for_someone_listening() {
        let now = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let clock = ManualClock::new(now);
        let store = Counting::default();
        let viewer = person();
        let content = InboxContent::new(
            NotificationId::from_u128(9),
            Origin::AppNotification,
            Content { title: "t".into(), body: "b".into(), ..Content::default() },
            (now, now + chrono::Duration::days(1)),
        );
        store.0.put_content(&content).await.unwrap();
        store.0.put_entries(&[content.entry_for(viewer.id, now)], &clock).await.unwrap();
        let hub = MemoryRealtime::new();
        let ports = CenterMarkDeps { center: &store, realtime: &hub, clock: &clock };
        mark(&ports, &viewer, viewer.id, content.notification_id, Mark::Read).await.unwrap();
        mark_all(&ports, &viewer, viewer.id, MarkAll::Seen).await.unwrap();
        assert_eq!(*store.1.lock().unwrap(), 0, "nobody listening: no count read");
        let mut heard = hub.subscribe();
        mark(&ports, &viewer, viewer.id, content.notification_id, Mark::Unread).await.unwrap();
        assert_eq!(*store.1.lock().unwrap(), 1);
        let told = heard.try_recv().unwrap();
        assert!(matches!(told.event, InboxEvent::Marked { counts: Some(InboxCounts { unread: 1, .. }), .. }));
    }

    /// A catch-up paged across the edge of its window goes on as its first page read: the same
    /// query, not a resync whose position would not fit (a 400 mid-paging).
    #[tokio::test]
    async fn a_catch_up_paged_across_its_windows_edge_goes_on() {
        let now = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let clock = ManualClock::new(now);
        let store = MemoryInboxStore::default();
        let viewer = person();
        let since = now - chrono::Duration::hours(24) + chrono::Duration::seconds(30);
        for i in 0..3u128 {
            let at = since + chrono::Duration::seconds(i as i64 + 1);
            let content = InboxContent::new(
                NotificationId::from_u128(100 + i),
                Origin::AppNotification,
                Content { title: format!("n{i}"), body: "b".into(), ..Content::default() },
                (at, at + chrono::Duration::days(2)),
            );
            store.put_content(&content).await.unwrap();
            store.put_entries(&[content.entry_for(viewer.id, at)], &clock).await.unwrap();
        }
        let accounts = crate::adapters::memory::MemoryDirectory::default();
        let ports = CenterReadDeps { accounts: &accounts, center: &store, clock: &clock };
        let query = InboxQuery::since(since);
        let (first, resync) = list(&ports, &viewer, viewer.id, &query, &PageRequest::first(2)).await.unwrap();
        assert!(!resync);
        assert_eq!(first.items.len(), 2);
        clock.advance(chrono::Duration::minutes(1));
        let (rest, resync) =
            list(&ports, &viewer, viewer.id, &query, &PageRequest::after(2, first.next)).await.unwrap();
        assert!(!resync, "the paging goes on as it began");
        assert_eq!(rest.items.len(), 1);
        // A new read from the same instant is past the window: a resync.
        let (_, resync) = list(&ports, &viewer, viewer.id, &query, &PageRequest::first(2)).await.unwrap();
        assert!(resync);
    }
}
