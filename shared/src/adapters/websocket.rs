//! Realtime on AWS: events posted to a person's open API Gateway WebSocket connections
//! (`PostToConnection`, allowed by `execute-api:ManageConnections`). A connection that is gone
//! (410) is forgotten. Best effort: errors are logged, never returned (a client catches up from
//! its cursor when it reconnects).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::StreamExt;

use crate::model::{Pushed, UserId};
use crate::ports::{ConnectionStore, Realtime};

/// Posts in flight at once.
const IN_FLIGHT: usize = 16;

pub struct WebSocketRealtime {
    client: Client,
    connections: Arc<dyn ConnectionStore>,
}

impl WebSocketRealtime {
    pub fn new(client: Client, connections: Arc<dyn ConnectionStore>) -> Self {
        WebSocketRealtime { client, connections }
    }
}

/// What a connection receives: the event and its cursor.
pub fn message(p: &Pushed) -> String {
    serde_json::json!({ "id": p.cursor.to_string(), "event": p.event }).to_string()
}

#[async_trait]
impl Realtime for WebSocketRealtime {
    async fn publish(&self, events: &[Pushed]) {
        let mut users: Vec<UserId> = events.iter().map(|e| e.user).collect();
        users.sort();
        users.dedup();
        // The events' own time (their cursors) decides which connections are still open.
        let at = events.iter().map(|e| e.cursor).max().and_then(chrono::DateTime::from_timestamp_millis);
        let Some(at) = at else { return };
        let open = match self.connections.of(&users, at).await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %e, "open connections not read; clients catch up when they reconnect");
                return;
            }
        };
        if open.is_empty() {
            return;
        }
        let mut by_user: HashMap<UserId, Vec<String>> = HashMap::new();
        for (user, connection) in open {
            by_user.entry(user).or_default().push(connection);
        }
        let mut posts: Vec<(String, String)> = Vec::new();
        for e in events {
            if let Some(connections) = by_user.get(&e.user) {
                let data = message(e);
                posts.extend(connections.iter().map(|c| (c.clone(), data.clone())));
            }
        }
        let outcomes: Vec<(String, bool)> = futures::stream::iter(posts)
            .map(|(connection, data)| async move {
                let result =
                    self.client.post_to_connection().connection_id(&connection).data(Blob::new(data)).send().await;
                let gone = match result {
                    Ok(_) => false,
                    Err(e) => {
                        let gone = e.as_service_error().is_some_and(|s| s.is_gone_exception());
                        if !gone {
                            tracing::warn!(connection = %connection, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "event not posted");
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
}
