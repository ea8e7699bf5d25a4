//! The bag: every port a deployment has, built once per cold start (`aws`) or per local runner
//! and test (`memory`). Only composition sees it: composition roots, the local runner, handlers'
//! wiring and tests. A use case never takes it; it takes the deps it names (`service::*`), which
//! the methods here build.

use std::sync::Arc;

use crate::ports::*;

/// Everything the services use from the outside world.
#[derive(Clone)]
pub struct Ports {
    pub notifications: Arc<dyn NotificationStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub directory: Arc<dyn Directory>,
    pub fanout_queue: Arc<dyn Queue>,
    pub delivery_queue: Arc<dyn Queue>,
    /// Email jobs, consumed at the account's SES rate (`service::emails`).
    pub email_queue: Arc<dyn Queue>,
    /// Status webhooks' deliveries, one try per message (`service::webhooks`).
    pub webhook_queue: Arc<dyn Queue>,
    /// Tenants' webhook endpoints and the record of each event.
    pub webhooks: Arc<dyn WebhookStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub webhook: Arc<dyn Webhook>,
    pub devices: Arc<dyn DeviceStore>,
    pub mailer: Arc<dyn Mailer>,
    pub push: Arc<dyn PushGateway>,
    /// Realtime connections, told what changed after each write.
    pub realtime: Arc<dyn Realtime>,
    /// Who holds which WebSocket connection (the realtime function writes it; realtime reads it).
    pub connections: Arc<dyn ConnectionStore>,
    /// Links in emails; `None` in functions that send no email and serve no link.
    pub channels: Option<crate::email::ChannelSettings>,
    /// The services' tunables.
    pub settings: crate::settings::Settings,
}
