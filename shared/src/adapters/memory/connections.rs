//! Open WebSocket connections in memory: by person, and each connection's person.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::error::StoreResult;
use crate::ports::*;

#[derive(Default)]
struct State {
    /// Per person: connection id → when it expires.
    by_user: HashMap<UserId, BTreeMap<String, DateTime<Utc>>>,
    owner: HashMap<String, UserId>,
    /// Per company: until when someone may be connected.
    online: HashMap<CompanyId, DateTime<Utc>>,
}

#[derive(Default)]
pub struct MemoryConnectionStore {
    state: Mutex<State>,
}

impl MemoryConnectionStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ConnectionStore for MemoryConnectionStore {
    async fn add(
        &self,
        user: UserId,
        company: CompanyId,
        connection: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut state = lock(&self.state);
        let until = state.online.entry(company).or_insert(expires_at);
        *until = (*until).max(expires_at);
        state.by_user.entry(user).or_default().insert(connection.to_string(), expires_at);
        state.owner.insert(connection.to_string(), user);
        Ok(())
    }

    async fn remove(&self, connection: &str) -> StoreResult<Option<UserId>> {
        let mut state = lock(&self.state);
        let owner = state.owner.remove(connection);
        if let Some(user) = owner
            && let Some(conns) = state.by_user.get_mut(&user)
        {
            conns.remove(connection);
        }
        Ok(owner)
    }

    async fn online(&self, company: CompanyId, now: DateTime<Utc>) -> StoreResult<bool> {
        Ok(lock(&self.state).online.get(&company).is_some_and(|until| *until > now))
    }

    async fn of(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<(UserId, String)>> {
        let state = lock(&self.state);
        let mut out = Vec::new();
        for user in users {
            if let Some(conns) = state.by_user.get(user) {
                out.extend(conns.iter().filter(|(_, exp)| **exp > now).map(|(c, _)| (*user, c.clone())));
            }
        }
        Ok(out)
    }
}
