//! The notification center in memory: each notification's content once, one small entry per
//! person kept in display order, and each person's watermarks. The states and views are the
//! model's rules (`InboxEntry::state`, `InboxQuery::admits`), as in every store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::error::{StoreError, StoreResult};
use crate::ports::*;

/// One stored entry: its place, when it was delivered, and the person's marks (boxed: most
/// entries have none, and a million recipients of a broadcast hold a million entries).
struct Entry {
    order: OrderKey,
    delivered_at: DateTime<Utc>,
    marks: Option<Box<Marks>>,
}

impl Entry {
    fn entry(&self, user: UserId, content: &InboxContent) -> InboxEntry {
        InboxEntry {
            user_id: user,
            notification_id: self.order.id,
            priority: self.order.priority(),
            created_at: content.created_at,
            expires_at: content.expires_at,
            delivered_at: self.delivered_at,
            marks: self.marks.as_deref().copied().unwrap_or_default(),
        }
    }
}

/// One person's center, kept sorted by display key: a read walks it from its cursor instead of
/// sorting everything. A plain sorted vector: centers are small, and a map per user would
/// allocate whole nodes for users with a single item.
#[derive(Default)]
struct UserInbox {
    sorted: Vec<Entry>,
    /// Boxed: most people never mark everything, and a million recipients are a million inboxes.
    marks_all: Option<Box<Watermarks>>,
}

impl UserInbox {
    fn watermarks(&self) -> Watermarks {
        self.marks_all.as_deref().copied().unwrap_or_default()
    }

    fn position(&self, id: NotificationId) -> Option<usize> {
        self.sorted.iter().position(|e| e.order.id == id)
    }
}

#[derive(Default)]
struct InboxState {
    users: HashMap<UserId, UserInbox>,
    contents: HashMap<NotificationId, Arc<InboxContent>>,
    /// The revision of each corrected content.
    revisions: HashMap<NotificationId, u64>,
}

impl InboxState {
    /// An entry joined with its content; `None` when the content is missing (as a store that
    /// joins at read would find it).
    fn item(&self, user: UserId, inbox: &UserInbox, e: &Entry) -> Option<InboxItem> {
        let content = self.contents.get(&e.order.id)?;
        let entry = e.entry(user, content);
        let state = entry.state(&inbox.watermarks());
        Some(InboxItem { entry, content: (**content).clone(), state })
    }
}

#[derive(Default)]
pub struct MemoryInboxStore {
    state: Mutex<InboxState>,
}

impl MemoryInboxStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are stored, visible or not.
    pub fn item_count(&self) -> usize {
        lock(&self.state).users.values().map(|u| u.sorted.len()).sum()
    }

    /// Every stored entry of every person with its content, visible or not (tests count with it).
    pub fn all_items(&self) -> Vec<InboxItem> {
        let state = lock(&self.state);
        state
            .users
            .iter()
            .flat_map(|(u, inbox)| inbox.sorted.iter().filter_map(|e| state.item(*u, inbox, e)))
            .collect()
    }
}

#[async_trait]
impl InboxDelivery for MemoryInboxStore {
    async fn put_content(&self, content: &InboxContent) -> StoreResult<()> {
        let mut state = lock(&self.state);
        // Never over a correction.
        if !state.revisions.contains_key(&content.notification_id) {
            state.contents.insert(content.notification_id, Arc::new(content.clone()));
        }
        Ok(())
    }

    async fn put_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<()> {
        let at = stamp.now();
        let mut state = lock(&self.state);
        for e in entries {
            put_entry(&mut state, e, at, true);
        }
        Ok(())
    }

    async fn put_new_entries(&self, entries: &[InboxEntry], stamp: &dyn Clock) -> StoreResult<Vec<UserId>> {
        let at = stamp.now();
        let mut state = lock(&self.state);
        Ok(entries.iter().filter(|e| put_entry(&mut state, e, at, false)).map(|e| e.user_id).collect())
    }

    async fn correct_content(&self, content: &InboxContent, revision: u64) -> StoreResult<()> {
        let mut state = lock(&self.state);
        let id = content.notification_id;
        if state.revisions.get(&id).is_some_and(|stored| *stored >= revision) {
            return Ok(());
        }
        state.revisions.insert(id, revision);
        state.contents.insert(id, Arc::new(content.clone()));
        Ok(())
    }

    async fn remove_entries(&self, entries: &[InboxEntry]) -> StoreResult<()> {
        let mut state = lock(&self.state);
        for e in entries {
            // By its key, as DynamoDB deletes it: the person and the display key.
            let order = e.order();
            if let Some(user) = state.users.get_mut(&e.user_id)
                && let Some(at) = user.sorted.iter().position(|x| x.order == order)
            {
                user.sorted.remove(at);
            }
        }
        Ok(())
    }
}

/// Puts `e` in its person's entries, in display order, delivered at the later of its time and
/// `at`, replacing theirs if `replace` (else an entry they have stays as it is); whether it was
/// written.
fn put_entry(state: &mut InboxState, e: &InboxEntry, at: DateTime<Utc>, replace: bool) -> bool {
    let user = state.users.entry(e.user_id).or_default();
    // Most people of a broadcast hold one entry: room for one, not the default four.
    if user.sorted.capacity() == 0 {
        user.sorted.reserve_exact(1);
    }
    if let Some(at) = user.position(e.notification_id) {
        if !replace {
            return false;
        }
        user.sorted.remove(at);
    }
    let order = e.order();
    let position = user.sorted.partition_point(|x| x.order < order);
    let marks = (e.marks != Marks::default()).then(|| Box::new(e.marks));
    user.sorted.insert(position, Entry { order, delivered_at: e.delivered_at.max(at), marks });
    true
}

#[async_trait]
impl Center for MemoryInboxStore {
    async fn get(&self, user: UserId, notification: NotificationId) -> StoreResult<Option<InboxItem>> {
        let state = lock(&self.state);
        let Some(inbox) = state.users.get(&user) else { return Ok(None) };
        Ok(inbox.position(notification).and_then(|at| state.item(user, inbox, &inbox.sorted[at])))
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
        let after = match page.after.as_deref() {
            None => None,
            Some(token) => Some(OrderKey::parse(&decode_cursor(token)?).ok_or_else(|| {
                StoreError::BadToken("nextToken is not a token this service issued".into())
            })?),
        };
        let start = after.map_or(0, |a| inbox.sorted.partition_point(|e| e.order <= a));
        let limit = page.limit.max(1);
        let watermarks = inbox.watermarks();
        let mut items = Vec::with_capacity(limit);
        let mut more = false;
        for e in &inbox.sorted[start..] {
            let Some(content) = state.contents.get(&e.order.id) else { continue };
            let entry = e.entry(user, content);
            if !query.admits(&entry, &watermarks, now) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            let state = entry.state(&watermarks);
            items.push(InboxItem { entry, content: (**content).clone(), state });
        }
        let next = match more {
            true => items.last().map(|i: &InboxItem| encode_cursor(&i.entry.order().text())),
            false => None,
        };
        Ok(Page { items, next })
    }

    async fn count(&self, user: UserId, now: DateTime<Utc>, window: usize) -> StoreResult<InboxCounts> {
        let state = lock(&self.state);
        let Some(inbox) = state.users.get(&user) else {
            return Ok(InboxCounts { exact: true, ..Default::default() });
        };
        let mut counts = InboxCounts { exact: inbox.sorted.len() <= window, ..InboxCounts::default() };
        let watermarks = inbox.watermarks();
        for e in inbox.sorted.iter().take(window) {
            let Some(content) = state.contents.get(&e.order.id) else { continue };
            let entry = e.entry(user, content);
            if !entry.is_expired(now) {
                counts.add(&entry.state(&watermarks));
            }
        }
        Ok(counts)
    }

    async fn mark(
        &self,
        user: UserId,
        notification: NotificationId,
        mark: Mark,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut guard = lock(&self.state);
        let InboxState { users, contents, .. } = &mut *guard;
        let Some(inbox) = users.get_mut(&user) else { return Ok(false) };
        let Some(position) = inbox.position(notification) else { return Ok(false) };
        let Some(content) = contents.get(&notification) else { return Ok(false) };
        let e = &mut inbox.sorted[position];
        let mut marks = e.marks.as_deref().copied().unwrap_or_default();
        if content.expires_at <= at || (mark != Mark::Dismissed && marks.dismissed_at.is_some()) {
            return Ok(false);
        }
        mark.apply(&mut marks, at);
        e.marks = Some(Box::new(marks));
        Ok(true)
    }

    async fn mark_all(&self, user: UserId, mark: MarkAll, at: DateTime<Utc>) -> StoreResult<()> {
        let mut state = lock(&self.state);
        let inbox = state.users.entry(user).or_default();
        let mut watermarks = inbox.watermarks();
        mark.apply(&mut watermarks, at);
        inbox.marks_all = Some(Box::new(watermarks));
        Ok(())
    }
}
