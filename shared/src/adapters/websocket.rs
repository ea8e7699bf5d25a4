//! Realtime on AWS: events posted to a person's open API Gateway WebSocket connections
//! (`PostToConnection`, allowed by `execute-api:ManageConnections`). A connection that is gone
//! (410) is forgotten. Best effort: errors are logged, never returned (a client catches up from
//! its cursor when it reconnects).
//!
//! Posts draw on the account's API Gateway request quota, which the HTTP API shares (10,000
//! requests a second per Region by default): a process posts at most the rate it is given
//! (`settings::REALTIME_POSTS_PER_SECOND`), at most [`IN_FLIGHT`] at once, so the delivery queue's consumers together stay within a stated share
//! of it (settings, and a parity test against the template's concurrency). What a message says is
//! the composition root's to decide (the dialect's rendering): this adapter only carries it.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::StreamExt;

use crate::model::{CompanyId, InboxEvent, UserId};
use crate::ports::{ConnectionStore, Realtime};

/// Posts in flight at once.
const IN_FLIGHT: usize = 16;

/// What a connection receives for an event at a cursor (the text of one WebSocket message).
pub type Render = fn(i64, &InboxEvent) -> String;

pub struct WebSocketRealtime {
    client: Client,
    connections: Arc<dyn ConnectionStore>,
    render: Render,
    pace: Pace,
}

impl WebSocketRealtime {
    /// Posting at most `posts_per_second` (the composition root's figure: settings).
    pub fn new(
        client: Client,
        connections: Arc<dyn ConnectionStore>,
        render: Render,
        posts_per_second: u32,
    ) -> Self {
        WebSocketRealtime { client, connections, render, pace: Pace::per_second(posts_per_second) }
    }
}

/// Evenly spaced slots, `per_second` of them a second at most, shared by every post of a
/// process (however many chunks it delivers at once).
pub struct Pace {
    interval: std::time::Duration,
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pace {
    pub fn per_second(per_second: u32) -> Self {
        Pace {
            interval: std::time::Duration::from_secs(1) / per_second.max(1),
            next: std::sync::Mutex::new(None),
        }
    }

    /// Waits for the next free slot.
    pub async fn slot(&self) {
        let at = self.reserve(tokio::time::Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// The next free slot for a post asking at `now`, taken.
    fn reserve(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        at
    }
}

#[async_trait]
impl Realtime for WebSocketRealtime {
    async fn publish(&self, company: CompanyId, users: &[UserId], cursor: i64, event: &InboxEvent) {
        // The event's own time (its cursor) decides which connections are still open.
        let Some(at) = chrono::DateTime::from_timestamp_millis(cursor) else { return };
        if users.is_empty() {
            return;
        }
        match self.connections.online(company, at).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "whether anyone is online not read; looking up everyone"),
        }
        let open = match self.connections.of(users, at).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "open connections not read; clients catch up when they reconnect");
                return;
            }
        };
        if open.is_empty() {
            return;
        }
        // Every open connection of these people hears the same message.
        let data = (self.render)(cursor, event);
        let data = data.as_str();
        let outcomes: Vec<(String, bool)> = futures::stream::iter(open)
            .map(|(_, connection)| async move {
                self.pace.slot().await;
                let result =
                    self.client.post_to_connection().connection_id(&connection).data(Blob::new(data)).send().await;
                let gone = match result {
                    Ok(_) => false,
                    Err(e) => {
                        let gone = e.as_service_error().is_some_and(|s| s.is_gone_exception());
                        if !gone {
                            tracing::warn!(connection = %connection, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "event not posted");
                            crate::metrics::count(crate::metrics::Metric::RealtimePostFailures, 1, &[]);
                        }
                        gone
                    }
                };
                (connection, gone)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (connection, gone) in outcomes {
            if gone && let Err(e) = self.connections.remove(&connection).await {
                tracing::warn!(connection = %connection, error = %e, "gone connection not forgotten");
            }
        }
    }

    async fn listening(&self, company: CompanyId, user: UserId, at: chrono::DateTime<chrono::Utc>) -> bool {
        match self.connections.online(company, at).await {
            Ok(false) => false,
            _ => self.connections.of(&[user], at).await.map_or(true, |open| !open.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::adapters::memory::MemoryConnectionStore;
    use crate::error::StoreResult;
    use crate::model::{CompanyId, InboxEvent};

    /// The memory store, counting the per-recipient lookups.
    #[derive(Default)]
    struct Counting(MemoryConnectionStore, Mutex<usize>);

    #[async_trait]
    impl ConnectionStore for Counting {
        async fn add(&self, u: UserId, c: CompanyId, id: &str, until: DateTime<Utc>) -> StoreResult<()> {
            self.0.add(u, c, id, until).await
        }
        async fn remove(&self, id: &str) -> StoreResult<Option<UserId>> {
            self.0.remove(id).await
        }
        async fn online(&self, c: CompanyId, now: DateTime<Utc>) -> StoreResult<bool> {
            self.0.online(c, now).await
        }
        async fn of(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<(UserId, String)>> {
            *self.1.lock().unwrap() += 1;
            self.0.of(users, now).await
        }
    }

    /// A delivery to a company where nobody is connected looks up none of its recipients; once
    /// someone is, it does (and a post that cannot reach API Gateway forgets no connection: only
    /// a 410 does).
    #[tokio::test]
    async fn nobody_online_means_no_lookups() {
        let store = Arc::new(Counting::default());
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let render: Render = |cursor, _| cursor.to_string();
        let realtime = WebSocketRealtime::new(Client::from_conf(config), store.clone(), render, 100);
        let now = DateTime::from_timestamp_millis(1_795_000_000_000).unwrap();
        let user = UserId::from_u128(1);
        let event =
            InboxEvent::MarkedAll { mark: "seen".into(), through: now.timestamp_millis(), counts: None };
        let cursor = now.timestamp_millis();
        realtime.publish(3, &[user], cursor, &event).await;
        assert_eq!(*store.1.lock().unwrap(), 0, "nobody of company 3 is online");
        store.add(user, 3, "c1", now + Duration::hours(2)).await.unwrap();
        realtime.publish(4, &[user], cursor, &event).await;
        assert_eq!(*store.1.lock().unwrap(), 0, "nor of company 4");
        realtime.publish(3, &[user], cursor, &event).await;
        assert_eq!(*store.1.lock().unwrap(), 1);
        assert_eq!(store.of(&[user], now).await.unwrap().len(), 1, "an unreachable endpoint forgets nothing");
    }

    /// However many posts ask at once, and whenever they ask, no second holds more slots than the
    /// pace allows; a pace that had nothing to do starts at once.
    #[test]
    fn the_pace_spaces_posts_evenly() {
        use std::time::Duration as Std;
        let pace = Pace::per_second(100);
        let start = tokio::time::Instant::now();
        // 350 at once, then 50 more two seconds later, then one after a long pause.
        let mut at: Vec<Std> = (0..350).map(|_| pace.reserve(start) - start).collect();
        at.extend((0..50).map(|_| pace.reserve(start + Std::from_secs(2)) - start));
        assert_eq!(pace.reserve(start + Std::from_secs(60)) - start, Std::from_secs(60));
        at.sort();
        for (i, t) in at.iter().enumerate() {
            let within = at[i..].iter().take_while(|u| **u < *t + Std::from_secs(1)).count();
            assert!(within <= 100, "{within} posts in the second from {t:?}");
        }
        assert_eq!(at.len(), 400);
    }
}
