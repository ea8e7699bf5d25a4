//! Realtime in one process: a broadcast hub every open connection subscribes to, each keeping
//! its own person's events. The local runner serves it as Server-Sent Events.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::model::{CompanyId, InboxEvent, Pushed, UserId};
use crate::ports::Realtime;

/// Events held for a slow subscriber before it lags (it then catches up from its cursor).
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct MemoryRealtime {
    tx: broadcast::Sender<Pushed>,
}

impl Default for MemoryRealtime {
    fn default() -> Self {
        MemoryRealtime { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl MemoryRealtime {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event published from now on (filter by person).
    pub fn subscribe(&self) -> broadcast::Receiver<Pushed> {
        self.tx.subscribe()
    }
}

#[async_trait]
impl Realtime for MemoryRealtime {
    async fn publish(&self, _: CompanyId, users: &[UserId], cursor: i64, event: &InboxEvent) {
        // Nobody is looking: nothing to send.
        if self.tx.receiver_count() == 0 {
            return;
        }
        for user in users {
            let _ = self.tx.send(Pushed { user: *user, cursor, event: event.clone() });
        }
    }

    async fn listening(&self, _: CompanyId, _: UserId, _: chrono::DateTime<chrono::Utc>) -> bool {
        self.tx.receiver_count() > 0
    }
}
