//! Wiring shared by every composition root (Lambda `main.rs`, the local runner, tests): the set
//! of ports a service needs, built from memory or from AWS.

use std::sync::Arc;
use std::time::Duration;

use crate::Config;
use crate::adapters::dynamodb::{DynamoDirectory, DynamoInboxStore, DynamoNotificationStore};
use crate::adapters::memory::{MemoryDirectory, MemoryInboxStore, MemoryNotificationStore, MemoryQueue};
use crate::adapters::outbound::OutboundPolicy;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::webhook::{CALLBACK_TIMEOUT, HttpWebhook};
use crate::ports::*;

/// Everything the services use from the outside world.
#[derive(Clone)]
pub struct Ports {
    pub notifications: Arc<dyn NotificationStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub directory: Arc<dyn Directory>,
    pub fanout_queue: Arc<dyn Queue>,
    pub delivery_queue: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub webhook: Arc<dyn Webhook>,
    /// Tries and backoff of callbacks.
    pub callback_retry: crate::adapters::Backoff,
    /// Recipients a company's group sends may reach per UTC day.
    pub daily_recipient_cap: u64,
    pub chunk_size: usize,
}

/// Callback tries: five, waiting up to 0.2 s, 0.4 s, 0.8 s, 1.6 s (full jitter), within the
/// deliver function's timeout.
pub const CALLBACK_RETRY: crate::adapters::Backoff = crate::adapters::Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_secs(5),
    max_attempts: 5,
};

/// The in-memory set, with handles on the concrete adapters for inspection.
pub struct MemoryPorts {
    pub ports: Ports,
    pub notifications: Arc<MemoryNotificationStore>,
    pub inbox: Arc<MemoryInboxStore>,
    pub directory: Arc<MemoryDirectory>,
    pub fanout_queue: Arc<MemoryQueue>,
    pub delivery_queue: Arc<MemoryQueue>,
}

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
        let ports = Ports {
            notifications: notifications.clone(),
            inbox: inbox.clone(),
            directory: directory.clone(),
            fanout_queue: fanout_queue.clone(),
            delivery_queue: delivery_queue.clone(),
            clock,
            ids,
            // The embedded runner is for development: callbacks to localhost are expected.
            webhook: Arc::new(HttpWebhook::new(CALLBACK_TIMEOUT, OutboundPolicy::loopback_allowed())),
            callback_retry: CALLBACK_RETRY,
            daily_recipient_cap: Config::DEFAULT_DAILY_RECIPIENT_CAP,
            chunk_size: Config::DEFAULT_CHUNK_SIZE,
        };
        MemoryPorts { ports, notifications, inbox, directory, fanout_queue, delivery_queue }
    }

    /// Wall clock and random ids.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock), Arc::new(RandomIds))
    }
}

/// The SDK configuration from the standard chain: region, credentials, and endpoint overrides
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, ...) for moto or LocalStack.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// The AWS set: DynamoDB tables and SQS queues named by `config`.
pub fn aws_ports(sdk: &aws_config::SdkConfig, config: &Config) -> Ports {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    Ports {
        notifications: Arc::new(DynamoNotificationStore::new(
            dynamo.clone(),
            &config.notifications_table,
            config.pending_shards,
        )),
        inbox: Arc::new(DynamoInboxStore::new(dynamo.clone(), &config.inbox_table)),
        directory: Arc::new(DynamoDirectory::new(dynamo, &config.directory_table)),
        fanout_queue: Arc::new(SqsQueue::new(sqs.clone(), &config.fanout_queue_url)),
        delivery_queue: Arc::new(SqsQueue::new(sqs, &config.delivery_queue_url)),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        webhook: Arc::new(HttpWebhook::new(CALLBACK_TIMEOUT, config.outbound.clone())),
        callback_retry: CALLBACK_RETRY,
        daily_recipient_cap: config.daily_recipient_cap,
        chunk_size: config.chunk_size,
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
