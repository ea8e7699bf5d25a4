//! The notification center in memory: one ordered list per person, expiry and dismissal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::error::{StoreError, StoreResult};
use crate::ports::*;

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
                            StoreError::BadToken("nextToken is not a token this service issued".into())
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
