//! Wiring shared by every composition root (Lambda `main.rs`, the local runner, tests): the set
//! of ports a service needs, built from memory or from AWS.

use std::sync::Arc;
use std::time::Duration;

use crate::Config;
use async_trait::async_trait;

use crate::adapters::dynamodb::{
    DynamoDeviceStore, DynamoDirectory, DynamoInboxStore, DynamoNotificationStore,
};
use crate::adapters::memory::{
    MemoryDeviceStore, MemoryDirectory, MemoryInboxStore, MemoryMailer, MemoryNotificationStore, MemoryPush,
    MemoryQueue,
};
use crate::adapters::outbound::OutboundPolicy;
use crate::adapters::ses::SesMailer;
use crate::adapters::sns::SnsPush;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::webhook::{CALLBACK_TIMEOUT, HttpWebhook};
use crate::config::ConfigError;
use crate::email::LinkSigner;
use crate::model::{Platform, UserId};
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
    pub devices: Arc<dyn DeviceStore>,
    pub mailer: Arc<dyn Mailer>,
    pub push: Arc<dyn PushGateway>,
    /// Links in emails; `None` in functions that send no email and serve no link.
    pub channels: Option<ChannelSettings>,
    /// Tries and backoff of callbacks.
    pub callback_retry: crate::adapters::Backoff,
    /// Recipients a company's group sends may reach per UTC day.
    pub daily_recipient_cap: u64,
    pub chunk_size: usize,
}

/// What email links need: where the public API is, and the key that signs them.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Base URL of this service's public API (links in emails point at its `/unsubscribe`).
    pub public_api_url: String,
    pub links: LinkSigner,
}

/// Devices kept per person: registering another displaces the oldest.
pub const MAX_DEVICES_PER_USER: usize = 10;

/// The mailer of functions that send no email.
struct NoMailer;

#[async_trait]
impl Mailer for NoMailer {
    async fn send(&self, _: &OutgoingEmail) -> Result<String, SendError> {
        Err(SendError::Transient("email is not configured in this function".into()))
    }
}

/// The push gateway of functions that neither register devices nor push.
struct NoPush;

#[async_trait]
impl PushGateway for NoPush {
    fn supports(&self, _: Platform) -> bool {
        false
    }
    async fn create_endpoint(&self, _: Platform, _: &str, _: UserId) -> Result<String, SendError> {
        Err(SendError::Transient("push is not configured in this function".into()))
    }
    async fn delete_endpoint(&self, _: &str) -> Result<(), SendError> {
        Err(SendError::Transient("push is not configured in this function".into()))
    }
    async fn publish(&self, _: &str, _: &str) -> Result<String, SendError> {
        Err(SendError::Transient("push is not configured in this function".into()))
    }
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
    pub devices: Arc<MemoryDeviceStore>,
    pub mailer: Arc<MemoryMailer>,
    pub push: Arc<MemoryPush>,
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
        let devices = Arc::new(MemoryDeviceStore::new());
        let mailer = Arc::new(MemoryMailer::new());
        let push = Arc::new(MemoryPush::new(&Platform::ALL));
        // A fresh key per process: links of the embedded runner are valid while it runs.
        let key: [u8; 32] = rand::random();
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
            devices: devices.clone(),
            mailer: mailer.clone(),
            push: push.clone(),
            channels: Some(ChannelSettings {
                public_api_url: LOCAL_PUBLIC_API_URL.to_string(),
                links: LinkSigner::new(key.to_vec()),
            }),
            callback_retry: CALLBACK_RETRY,
            daily_recipient_cap: Config::DEFAULT_DAILY_RECIPIENT_CAP,
            chunk_size: Config::DEFAULT_CHUNK_SIZE,
        };
        MemoryPorts {
            ports,
            notifications,
            inbox,
            directory,
            fanout_queue,
            delivery_queue,
            devices,
            mailer,
            push,
        }
    }

    /// Wall clock and random ids.
    pub fn system() -> Self {
        Self::new(Arc::new(SystemClock), Arc::new(RandomIds))
    }
}

/// The SDK configuration from the standard chain: region, credentials, and endpoint overrides
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, ...) for moto or LocalStack.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    // A custom endpoint (moto, LocalStack, a proxy) may present any CA: the system's store then.
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return loader.load().await;
    }
    loader.http_client(aws_https_client()).load().await
}

/// Whether a root certificate is one AWS service endpoints chain to: Amazon Trust Services'
/// roots, and the Starfield root that cross-signs them.
fn is_aws_root(der: &[u8]) -> bool {
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    contains(b"Amazon Root CA") || contains(b"Starfield Services Root Certificate Authority - G2")
}

/// The HTTPS client every SDK client shares: rustls on aws-lc, trusting the roots AWS endpoints
/// chain to, compiled in. The SDK's default client reads and parses the system's whole CA store
/// when each SDK client is built (about 150 files and one parse per client here): milliseconds
/// of every cold start, for endpoints that only ever present these few roots.
pub fn aws_https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    use base64::Engine;
    let mut store = TrustStore::empty().with_native_roots(false);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().filter(|c| is_aws_root(c.as_ref())) {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        let lines: Vec<&str> =
            body.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap_or_default()).collect();
        let pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"));
        store = store.with_pem_certificate(pem.into_bytes());
    }
    let context =
        TlsContext::builder().with_trust_store(store).build().expect("a trust store of certificates");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// The AWS set: DynamoDB tables and SQS queues named by `config`. Email and push are off: the
/// functions that need them add them with [`with_email`] and [`with_push`], so that the others
/// do not carry those SDKs.
pub fn aws_ports(sdk: &aws_config::SdkConfig, config: &Config) -> Ports {
    aws_ports_from(aws_sdk_dynamodb::Client::new(sdk), aws_sdk_sqs::Client::new(sdk), config)
}

/// The AWS set over given clients (the benchmark's count every request with an interceptor).
pub fn aws_ports_from(dynamo: aws_sdk_dynamodb::Client, sqs: aws_sdk_sqs::Client, config: &Config) -> Ports {
    Ports {
        notifications: Arc::new(DynamoNotificationStore::new(
            dynamo.clone(),
            &config.notifications_table,
            config.pending_shards,
        )),
        inbox: Arc::new(DynamoInboxStore::new(dynamo.clone(), &config.inbox_table)),
        directory: Arc::new(DynamoDirectory::new(dynamo.clone(), &config.directory_table)),
        devices: Arc::new(DynamoDeviceStore::new(dynamo, &config.directory_table)),
        mailer: Arc::new(NoMailer),
        push: Arc::new(NoPush),
        channels: None,
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

/// Adds SES email and the link settings (deliver).
pub fn with_email(
    mut ports: Ports,
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Ports, ConfigError> {
    let from = config.email_from.clone().ok_or(ConfigError::Missing(Config::EMAIL_FROM))?;
    ports.mailer =
        Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), from, config.ses_configuration_set.clone()));
    ports.channels = Some(config.channel_settings()?);
    Ok(ports)
}

/// Adds SNS push and the link settings (deliver publishes; inbox registers devices and follows
/// unsubscribe links).
pub fn with_push(
    mut ports: Ports,
    sdk: &aws_config::SdkConfig,
    config: &Config,
) -> Result<Ports, ConfigError> {
    ports.push = Arc::new(SnsPush::new(aws_sdk_sns::Client::new(sdk), config.push_applications.clone()));
    ports.channels = Some(config.channel_settings()?);
    Ok(ports)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_trusts_the_amazon_roots_only() {
        let aws: Vec<_> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().filter(|c| is_aws_root(c.as_ref())).collect();
        // Amazon Root CA 1-4 and Starfield Services Root CA G2.
        assert!((4..=6).contains(&aws.len()), "{} roots", aws.len());
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
        // Building an SDK client builds its connector, parsing the trust store.
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
            .http_client(aws_https_client())
            .build();
        let _client = aws_sdk_dynamodb::Client::from_conf(conf);
    }
}
