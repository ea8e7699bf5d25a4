//! The in-memory composition: the local runner's embedded default and the fast test path.

use std::sync::Arc;
use std::time::Duration;

use super::Ports;
use crate::adapters::memory::{
    MemoryConnectionStore, MemoryDeviceStore, MemoryDirectory, MemoryInboxStore, MemoryMailer,
    MemoryNotificationStore, MemoryPush, MemoryQueue, MemoryRealtime, MemoryWebhookStore,
};
use crate::adapters::outbound::OutboundPolicy;
use crate::adapters::webhook::{CALLBACK_TIMEOUT, HttpWebhook};
use crate::email::{ChannelSettings, LinkSigner};
use crate::model::Platform;
use crate::ports::*;
use crate::settings::Settings;

/// The in-memory set, with handles on the concrete adapters for inspection.
pub struct MemoryPorts {
    pub ports: Ports,
    pub notifications: Arc<MemoryNotificationStore>,
    pub inbox: Arc<MemoryInboxStore>,
    pub directory: Arc<MemoryDirectory>,
    pub fanout_queue: Arc<MemoryQueue>,
    pub delivery_queue: Arc<MemoryQueue>,
    pub email_queue: Arc<MemoryQueue>,
    pub webhook_queue: Arc<MemoryQueue>,
    pub webhooks: Arc<MemoryWebhookStore>,
    pub devices: Arc<MemoryDeviceStore>,
    pub mailer: Arc<MemoryMailer>,
    pub push: Arc<MemoryPush>,
    /// The realtime hub (the local runner serves it as Server-Sent Events).
    pub realtime: Arc<MemoryRealtime>,
}

/// The public URL the memory ports put in email links (the local runner replaces it with its own).
pub const LOCAL_PUBLIC_API_URL: &str = "http://127.0.0.1:3000";

/// Receives before a message moves to its DLQ; the template's redrive policies use the same.
pub const MAX_RECEIVES: u32 = 5;

impl MemoryPorts {
    pub fn new(clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self::with_queues(clock, ids, Duration::from_secs(30), MAX_RECEIVES)
    }

    /// With the queues' visibility timeout and receive limit chosen (fault-injection tests use
    /// zero visibility, so a failed message is redelivered at once).
    pub fn with_queues(
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        visibility: Duration,
        max_receives: u32,
    ) -> Self {
        let notifications = Arc::new(MemoryNotificationStore::new());
        let inbox = Arc::new(MemoryInboxStore::new());
        let directory = Arc::new(MemoryDirectory::new());
        let fanout_dlq = Arc::new(MemoryQueue::new(visibility));
        let delivery_dlq = Arc::new(MemoryQueue::new(visibility));
        let fanout_queue = Arc::new(MemoryQueue::with_dead_letters(visibility, max_receives, fanout_dlq));
        let delivery_queue = Arc::new(MemoryQueue::with_dead_letters(visibility, max_receives, delivery_dlq));
        let email_dlq = Arc::new(MemoryQueue::new(visibility));
        let email_queue = Arc::new(MemoryQueue::with_dead_letters(visibility, max_receives, email_dlq));
        let webhook_dlq = Arc::new(MemoryQueue::new(visibility));
        let webhook_queue = Arc::new(MemoryQueue::with_dead_letters(visibility, max_receives, webhook_dlq));
        let webhooks = Arc::new(MemoryWebhookStore::new());
        let devices = Arc::new(MemoryDeviceStore::new());
        let mailer = Arc::new(MemoryMailer::new());
        let push = Arc::new(MemoryPush::new(&Platform::ALL));
        let realtime = Arc::new(MemoryRealtime::new());
        // A fresh key per process: links of the embedded runner are valid while it runs.
        let key: [u8; 32] = rand::random();
        let ports = Ports {
            notifications: notifications.clone(),
            inbox: inbox.clone(),
            directory: directory.clone(),
            fanout_queue: fanout_queue.clone(),
            delivery_queue: delivery_queue.clone(),
            email_queue: email_queue.clone(),
            webhook_queue: webhook_queue.clone(),
            webhooks: webhooks.clone(),
            clock,
            ids,
            // The embedded runner is for development: callbacks to localhost are expected.
            webhook: Arc::new(HttpWebhook::new(CALLBACK_TIMEOUT, OutboundPolicy::loopback_allowed())),
            devices: devices.clone(),
            mailer: mailer.clone(),
            push: push.clone(),
            realtime: realtime.clone(),
            connections: Arc::new(MemoryConnectionStore::new()),
            channels: Some(ChannelSettings {
                public_api_url: Some(LOCAL_PUBLIC_API_URL.to_string()),
                links: LinkSigner::new(key.to_vec()),
                realtime_url: None,
            }),
            settings: Settings::local(),
        };
        MemoryPorts {
            ports,
            notifications,
            inbox,
            directory,
            fanout_queue,
            delivery_queue,
            email_queue,
            webhook_queue,
            webhooks,
            devices,
            mailer,
            push,
            realtime,
        }
    }

    /// Wall clock and random ids.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock), Arc::new(RandomIds))
    }
}

impl MemoryPorts {
    /// Loads a directory snapshot (panics on failure: for benchmarks and fixtures).
    pub async fn directory_load(&self, snapshot: &crate::directory::DirectorySnapshot) {
        self.directory.load(snapshot).await.expect("the memory directory loads any snapshot");
    }

    /// Loads the demo directory (DEMO-DIRECTORY.md) and returns its summary line.
    pub async fn load_demo_directory(&self) -> Result<String, crate::StoreError> {
        let demo = crate::directory::DirectorySnapshot::demo();
        self.directory.load(&demo).await?;
        Ok(demo.summary())
    }
}
