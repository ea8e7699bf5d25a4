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
    /// Email jobs, consumed at the account's SES rate (`service::emails`).
    pub email_queue: Arc<dyn Queue>,
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
    /// The pace of email and the waits between an email job's rounds.
    pub email_sending: EmailSending,
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

/// How emails go out (`service::emails`).
#[derive(Debug, Clone, Copy)]
pub struct EmailSending {
    /// Emails one email-queue consumer starts per second: the account's SES sending rate shared
    /// by the queue's `EMAIL_CONSUMERS`; `None`: as fast as the mailer answers.
    pub per_consumer: Option<f64>,
    /// Waits before the next round of a job SES throttled (its ceiling grows per round).
    pub retry: crate::adapters::Backoff,
    /// Rounds of a job before what is still unsent counts as failed.
    pub max_rounds: u32,
}

/// Concurrent consumers of the email queue: the template's `MaximumConcurrency` of deliver's
/// email-queue event source (the least Lambda allows), so the account's rate is shared by two.
pub const EMAIL_CONSUMERS: u32 = 2;

/// The share of the account's rate email is paced to.
pub const PACE_HEADROOM: f64 = 0.9;

/// Waits between rounds of a throttled email job: up to 30 s, 1 min, 2 min ... 15 min (SQS's
/// longest delay); 20 rounds wait about four hours in all, long enough for a daily quota
/// that is near its end to be counted out rather than retried forever.
pub const EMAIL_RETRY: crate::adapters::Backoff = crate::adapters::Backoff {
    base: Duration::from_secs(30),
    cap: Duration::from_secs(900),
    max_attempts: 20,
};

impl EmailSending {
    /// Paced for an account sending `rate` emails per second: each consumer starts 90% of its
    /// share, so that timer lateness and SES's own clock never put a second over the rate.
    pub fn for_account_rate(rate: f64) -> Self {
        EmailSending {
            per_consumer: Some(rate * PACE_HEADROOM / f64::from(EMAIL_CONSUMERS)),
            retry: EMAIL_RETRY,
            max_rounds: EMAIL_RETRY.max_attempts,
        }
    }

    /// Unpaced (the memory mailer has no rate).
    pub fn unpaced() -> Self {
        EmailSending { per_consumer: None, retry: EMAIL_RETRY, max_rounds: EMAIL_RETRY.max_attempts }
    }
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

/// The queues of functions that enqueue nothing (their IAM policy grants no SQS).
struct NoQueue;

impl NoQueue {
    fn refused<T>() -> crate::error::StoreResult<T> {
        Err(crate::error::StoreError::Transient("queues are not configured in this function".into()))
    }
}

#[async_trait]
impl Queue for NoQueue {
    async fn send_all(&self, _: &[String]) -> crate::error::StoreResult<()> {
        Self::refused()
    }
    async fn send_later(&self, _: &str, _: Duration) -> crate::error::StoreResult<()> {
        Self::refused()
    }
    async fn receive(&self, _: usize) -> crate::error::StoreResult<Vec<ReceivedMessage>> {
        Self::refused()
    }
    async fn ack(&self, _: &str) -> crate::error::StoreResult<()> {
        Self::refused()
    }
    async fn nack(&self, _: &str) -> crate::error::StoreResult<()> {
        Self::refused()
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
    pub email_queue: Arc<MemoryQueue>,
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
        let email_dlq = Arc::new(MemoryQueue::new(visibility));
        let email_queue = Arc::new(MemoryQueue::with_dead_letters(visibility, max_receives, email_dlq));
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
            email_queue: email_queue.clone(),
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
            email_sending: EmailSending::unpaced(),
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
            email_queue,
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

/// The SDK configuration: in a Lambda, built from the variables Lambda sets (see
/// [`lambda_sdk_config`]); elsewhere from the standard chain: region, credentials, profile files
/// and endpoint overrides (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, ...) for moto or
/// LocalStack.
///
/// Where the environment holds the credentials and the region, the chain takes them from it
/// directly: it would pick the same values first, but building the chains costs a cold start
/// about a millisecond (the web-identity link alone builds an STS client, the IMDS link its own).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    let vars: Vec<(String, String)> = std::env::vars().collect();
    if let Some(config) = lambda_sdk_config(&vars) {
        return config;
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let set = |name: &str| vars.iter().any(|(k, v)| k == name && !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if set("AWS_REGION") || set("AWS_DEFAULT_REGION") {
        loader = loader.region(EnvironmentVariableRegionProvider::new());
    }
    // A custom endpoint (moto, LocalStack, a proxy) may present any CA: the system's store then.
    if set("AWS_ENDPOINT_URL") {
        return loader.load().await;
    }
    loader.http_client(aws_https_client()).load().await
}

/// The SDK configuration of a Lambda function, from the variables Lambda sets: region and the
/// execution role's credentials, with the defaults the standard chain would settle on (standard
/// retries, 3.1 s connect timeout, a lazy identity cache, the Tokio sleep) and our HTTPS client.
///
/// `None` outside Lambda, and whenever any other `AWS_*` variable is set (a retry mode, a
/// profile, a global endpoint, FIPS ...): those are the chain's to interpret. Service endpoint
/// overrides (`AWS_ENDPOINT_URL_<SERVICE>`) are honoured. The chain's own machinery (profile
/// files, provider chains, a dozen settings each looked up in env and profile) is most of the
/// SDK's share of a cold start that is not client construction.
pub fn lambda_sdk_config(vars: &[(String, String)]) -> Option<aws_config::SdkConfig> {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    // What Lambda sets, and AWS_CA_BUNDLE, which our HTTPS client reads itself.
    const LAMBDA_SETS: [&str; 8] = [
        CA_BUNDLE,
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_EXECUTION_ENV",
        "AWS_XRAY_CONTEXT_MISSING",
    ];
    const LAMBDA_PREFIXES: [&str; 3] = ["AWS_LAMBDA_", "AWS_XRAY_", "AWS_ENDPOINT_URL_"];
    let get =
        |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    get("AWS_LAMBDA_FUNCTION_NAME")?;
    let other_settings = vars.iter().any(|(k, _)| {
        k.starts_with("AWS_")
            && !LAMBDA_SETS.contains(&k.as_str())
            && !LAMBDA_PREFIXES.iter().any(|prefix| k.starts_with(prefix))
    });
    if other_settings {
        return None;
    }
    let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"))?;
    get("AWS_ACCESS_KEY_ID")?;
    get("AWS_SECRET_ACCESS_KEY")?;
    let endpoints: Vec<(String, String)> =
        vars.iter().filter(|(k, v)| k.starts_with("AWS_ENDPOINT_URL_") && !v.is_empty()).cloned().collect();
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    Some(
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .identity_cache(aws_config::identity::IdentityCache::lazy().build())
            .retry_config(RetryConfig::standard())
            .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_millis(3100)).build())
            .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
            .http_client(aws_https_client())
            .service_config(ServiceEndpoints(endpoints))
            .build(),
    )
}

/// `AWS_ENDPOINT_URL_<SERVICE>` overrides, as the standard chain reads them from the environment.
#[derive(Debug)]
struct ServiceEndpoints(Vec<(String, String)>);

impl aws_types::service_config::LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let name = format!("{}_{}", key.env(), key.service_id().to_uppercase().replace(' ', "_"));
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }
}

/// Extra certificates to trust, as the AWS SDKs read it.
pub const CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// The root certificates AWS service endpoints chain to (Amazon Root CA 1-4, and the Starfield
/// root that cross-signs them), selected from the Mozilla set at build time (`build.rs`).
const AWS_ROOTS_PEM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/aws-roots.pem"));

/// The HTTPS client every SDK client shares: rustls on aws-lc, trusting the roots AWS endpoints
/// chain to, compiled in. The SDK's default client reads and parses the system's whole CA store
/// when each SDK client is built (about 150 files and one parse per client here): milliseconds
/// of every cold start, for endpoints that only ever present these few roots.
///
/// `AWS_CA_BUNDLE` (the SDKs' standard setting) names a PEM file whose certificates are trusted
/// besides: a TLS-terminating proxy in front of an emulator (the cold-start benchmark's), or a
/// corporate proxy. An unreadable bundle stops the init with its path.
pub fn aws_https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let mut store = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
    if let Some(path) = std::env::var_os(CA_BUNDLE).filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{CA_BUNDLE}={}: {e}", std::path::Path::new(&path).display()));
        store = store.with_pem_certificate(pem);
    }
    let context =
        TlsContext::builder().with_trust_store(store).build().expect("a trust store of certificates");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https();
    aws_sdk_dynamodb::config::SharedHttpClient::new(NoThrowawayConnector(client))
}

/// An HTTP client that skips the per-SDK-client "validation" of the one it wraps. The hyper
/// client builds a whole TLS connector there (decoding and parsing the trust store, building a
/// rustls config) and drops it: it exists to load the system's CA store before the first
/// request, which this client does not use. That was ~0.15 ms of CPU per SDK client at every
/// cold start; the connector a request uses is built and cached at the first request either way.
#[derive(Debug)]
struct NoThrowawayConnector(aws_sdk_dynamodb::config::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for NoThrowawayConnector {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The AWS services a function uses besides its DynamoDB tables, as its IAM policy grants them:
/// SQS queues, SES email, SNS push. Email and push also need the link settings
/// (`PUBLIC_API_URL`, `LINK_SIGNING_KEY`), email `EMAIL_FROM`.
///
/// Each service is its adapters' constructor, so that a function builds no client it cannot
/// use, and does not even link the SDKs it does not ask for (about 0.4 MB of code apiece).
#[derive(Clone, Copy)]
pub struct Services {
    queues: Option<QueuesFactory>,
    email: Option<MailerFactory>,
    push: Option<PushFactory>,
}

/// The fan-out queue, the delivery queue and the email queue.
type Queues = (Arc<dyn Queue>, Arc<dyn Queue>, Arc<dyn Queue>);
/// Builds the SQS queues.
type QueuesFactory = fn(&aws_config::SdkConfig, &Config) -> Queues;
/// Builds the SES mailer sending from the given address.
type MailerFactory = fn(&aws_config::SdkConfig, &Config, String) -> Arc<dyn Mailer>;
/// Builds the SNS push gateway.
type PushFactory = fn(&aws_config::SdkConfig, &Config) -> Arc<dyn PushGateway>;

impl Services {
    /// DynamoDB only (sent history).
    pub const TABLES: Services = Services { queues: None, email: None, push: None };
    /// And SQS (send and notify enqueue fan-outs, fan-out enqueues deliveries).
    pub const QUEUES: Services = Services { queues: Some(sqs_queues), email: None, push: None };
    /// And SNS (the inbox registers devices and follows unsubscribe links).
    pub const PUSH: Services = Services { queues: None, email: None, push: Some(sns_push) };
    /// Everything: deliver (it queues email jobs, sends email and pushes), and the local runner
    /// and the tests, which serve every route in one process.
    pub const ALL: Services =
        Services { queues: Some(sqs_queues), email: Some(ses_mailer), push: Some(sns_push) };

    /// Whether SQS, SES and SNS clients are built (the parity tests compare them with the
    /// template's policies).
    pub fn uses(&self) -> (bool, bool, bool) {
        (self.queues.is_some(), self.email.is_some(), self.push.is_some())
    }
}

fn sqs_queues(sdk: &aws_config::SdkConfig, config: &Config) -> Queues {
    sqs_queues_of(aws_sdk_sqs::Client::new(sdk), config)
}

fn ses_mailer(sdk: &aws_config::SdkConfig, config: &Config, from: String) -> Arc<dyn Mailer> {
    Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), from, config.ses_configuration_set.clone()))
}

fn sns_push(sdk: &aws_config::SdkConfig, config: &Config) -> Arc<dyn PushGateway> {
    Arc::new(SnsPush::new(aws_sdk_sns::Client::new(sdk), config.push_applications.clone()))
}

/// The AWS set: the DynamoDB tables named by `config`, and the `services` asked for.
///
/// The configuration is checked before any client is built. The clients are built side by
/// side on the runtime's worker threads: each SDK parses its endpoint rules' partition table and
/// compiles their region patterns when its first client is built (~0.1 ms apiece), work that
/// otherwise adds up serially in every cold start.
pub async fn aws_ports(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    services: Services,
) -> Result<Ports, ConfigError> {
    let email_from = match services.email {
        Some(_) => Some(config.email_from.clone().ok_or(ConfigError::Missing(Config::EMAIL_FROM))?),
        None => None,
    };
    let settings = match services.email.is_some() || services.push.is_some() {
        true => Some(config.channel_settings()?),
        false => None,
    };
    fn spawn<T: Send + 'static>(
        sdk: &aws_config::SdkConfig,
        config: &Config,
        build: impl FnOnce(&aws_config::SdkConfig, &Config) -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let (sdk, config) = (sdk.clone(), config.clone());
        tokio::spawn(async move { build(&sdk, &config) })
    }
    async fn joined<T>(handle: tokio::task::JoinHandle<T>) -> T {
        handle.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
    let queues = services.queues.map(|sqs| spawn(sdk, config, sqs));
    let mailer =
        services.email.zip(email_from).map(|(ses, from)| spawn(sdk, config, move |s, c| ses(s, c, from)));
    let push = services.push.map(|sns| spawn(sdk, config, sns));
    let mut ports = tables_ports(aws_sdk_dynamodb::Client::new(sdk), config);
    if let Some(queues) = queues {
        (ports.fanout_queue, ports.delivery_queue, ports.email_queue) = joined(queues).await;
    }
    if let Some(mailer) = mailer {
        ports.mailer = joined(mailer).await;
    }
    if let Some(push) = push {
        ports.push = joined(push).await;
    }
    ports.channels = settings;
    Ok(ports)
}

/// The AWS set over given clients (the benchmark's count every request with an interceptor).
pub fn aws_ports_from(dynamo: aws_sdk_dynamodb::Client, sqs: aws_sdk_sqs::Client, config: &Config) -> Ports {
    let mut ports = tables_ports(dynamo, config);
    (ports.fanout_queue, ports.delivery_queue, ports.email_queue) = sqs_queues_of(sqs, config);
    ports
}

fn sqs_queues_of(sqs: aws_sdk_sqs::Client, config: &Config) -> Queues {
    (
        Arc::new(SqsQueue::new(sqs.clone(), &config.fanout_queue_url)),
        Arc::new(SqsQueue::new(sqs.clone(), &config.delivery_queue_url)),
        Arc::new(SqsQueue::new(sqs, &config.email_queue_url)),
    )
}

/// The tables over DynamoDB; no queues, email or push.
fn tables_ports(dynamo: aws_sdk_dynamodb::Client, config: &Config) -> Ports {
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
        fanout_queue: Arc::new(NoQueue),
        delivery_queue: Arc::new(NoQueue),
        email_queue: Arc::new(NoQueue),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        webhook: Arc::new(HttpWebhook::new(CALLBACK_TIMEOUT, config.outbound.clone())),
        callback_retry: CALLBACK_RETRY,
        email_sending: EmailSending::for_account_rate(f64::from(config.email_send_rate)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sdk_trusts_the_amazon_roots_only_and_builds_its_connector_at_the_first_request() {
        let pem = std::str::from_utf8(AWS_ROOTS_PEM).expect("PEM is ASCII");
        // Amazon Root CA 1-4 and Starfield Services Root CA G2.
        let roots = pem.matches("-----BEGIN CERTIFICATE-----").count();
        assert!((4..=6).contains(&roots), "{roots} roots");
        assert_eq!(roots, pem.matches("-----END CERTIFICATE-----").count());

        // An endpoint that accepts and hangs up: the request fails, after the connector was built
        // from the bundle (the hyper client panics on a certificate it cannot parse).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("addr").port();
        let accepted = std::thread::spawn(move || listener.accept().map(drop).is_ok());
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("a", "b", None, None, "test"))
            .endpoint_url(format!("https://127.0.0.1:{port}"))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .http_client(aws_https_client())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        assert!(client.list_tables().send().await.is_err());
        assert!(accepted.join().expect("listener thread"), "the client connected");
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const LAMBDA: [(&str, &str); 8] = [
        ("AWS_LAMBDA_FUNCTION_NAME", "send"),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
        ("NOTIFICATIONS_TABLE", "n"),
    ];

    fn endpoint_key(service: &str) -> aws_types::service_config::ServiceConfigKey<'_> {
        aws_types::service_config::ServiceConfigKey::builder()
            .service_id(service)
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .expect("a complete key")
    }

    #[tokio::test]
    async fn a_lambda_environment_gives_the_sdk_config_without_the_chain() {
        let mut env = vars(&LAMBDA);
        env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), "http://127.0.0.1:4566".into()));
        let sdk = lambda_sdk_config(&env).expect("the Lambda fast path");
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(3));
        assert_eq!(sdk.timeout_config().and_then(|t| t.connect_timeout()), Some(Duration::from_millis(3100)));
        assert!(sdk.sleep_impl().is_some() && sdk.identity_cache().is_some() && sdk.http_client().is_some());
        let endpoints = sdk.service_config().expect("service endpoint overrides");
        assert_eq!(endpoints.load_config(endpoint_key("DynamoDB")).as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(endpoints.load_config(endpoint_key("SQS")), None);
        // The execution role's credentials, read from the environment when requests are signed.
        assert!(
            format!("{:?}", sdk.credentials_provider()).contains("EnvironmentVariableCredentialsProvider")
        );
    }

    #[test]
    fn the_chain_decides_outside_lambda_and_when_other_aws_settings_are_present() {
        let lambda = vars(&LAMBDA);
        let without = |name: &str| -> Vec<(String, String)> {
            lambda.iter().filter(|(k, _)| k != name).cloned().collect()
        };
        let with = |name: &str, value: &str| -> Vec<(String, String)> {
            let mut v = lambda.clone();
            v.push((name.into(), value.into()));
            v
        };
        assert!(lambda_sdk_config(&without("AWS_LAMBDA_FUNCTION_NAME")).is_none());
        assert!(lambda_sdk_config(&without("AWS_ACCESS_KEY_ID")).is_none());
        assert!(lambda_sdk_config(&without("AWS_REGION")).is_some(), "AWS_DEFAULT_REGION suffices");
        for setting in
            ["AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE", "AWS_USE_FIPS_ENDPOINT"]
        {
            assert!(lambda_sdk_config(&with(setting, "x")).is_none(), "{setting}");
        }
        assert!(lambda_sdk_config(&with("AWS_LAMBDA_LOG_FORMAT", "JSON")).is_some());
        assert!(lambda_sdk_config(&with("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000")).is_some());
        // Read by our HTTPS client, so not a reason to take the chain.
        assert!(lambda_sdk_config(&with(CA_BUNDLE, "/etc/proxy-ca.pem")).is_some());
    }
}
