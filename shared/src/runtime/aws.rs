//! The AWS composition: DynamoDB tables, and the SQS, SES and SNS clients a function's IAM
//! policy allows.

use std::sync::Arc;

use async_trait::async_trait;

use super::Ports;
use super::config::ConfigError;
use crate::Config;
use crate::adapters::dynamodb::{
    DynamoConnectionStore, DynamoDeviceStore, DynamoDirectory, DynamoInboxStore, DynamoNotificationStore,
};
use crate::adapters::ses::SesMailer;
use crate::adapters::sns::SnsPush;
use crate::adapters::sqs::SqsQueue;
use crate::adapters::webhook::{CALLBACK_TIMEOUT, HttpWebhook};
use crate::model::{Platform, UserId};
use crate::ports::*;

/// The AWS services a function uses besides its DynamoDB tables, as its IAM policy grants them:
/// SQS queues, SES email (and SSM, for where its links point when `PUBLIC_API_URL` is not
/// given), SNS push. Email and push also need the link key (`LINK_SIGNING_KEY`), email
/// `EMAIL_FROM`.
///
/// Each service is its adapters' constructor, so that a function builds no client it cannot
/// use, and does not even link the SDKs it does not ask for (about 0.4 MB of code apiece).
#[derive(Clone, Copy)]
pub struct Services {
    queues: Option<QueuesFactory>,
    /// SES, and where the links in emails point when `PUBLIC_API_URL` is not given (SSM).
    email: Option<(MailerFactory, ParameterReader)>,
    push: Option<PushFactory>,
}

/// The fan-out queue, the delivery queue and the email queue.
type Queues = (Arc<dyn Queue>, Arc<dyn Queue>, Arc<dyn Queue>, Arc<dyn Queue>);
/// Builds the SQS queues.
type QueuesFactory = fn(&aws_config::SdkConfig, &Config) -> Queues;
/// Builds the SES mailer sending from the given address.
type MailerFactory = fn(&aws_config::SdkConfig, &Config, String) -> Arc<dyn Mailer>;
/// Builds the SNS push gateway.
type PushFactory = fn(&aws_config::SdkConfig, &Config) -> Arc<dyn PushGateway>;
/// Reads an SSM parameter's value (the SDK's error, as text, when it cannot).
type ParameterReader =
    fn(aws_config::SdkConfig, String) -> futures::future::BoxFuture<'static, Result<String, String>>;

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
        Services { queues: Some(sqs_queues), email: Some((ses_mailer, ssm_parameter)), push: Some(sns_push) };

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

fn ssm_parameter(
    sdk: aws_config::SdkConfig,
    name: String,
) -> futures::future::BoxFuture<'static, Result<String, String>> {
    Box::pin(async move {
        // A cold-start storm of deliver's instances shares SSM's 40 reads a second per account
        // (GetParameter's default quota) with every other reader: throttling is waited out a
        // little longer than the SDK's standard three attempts, within Lambda's init phase.
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(6)
            .with_max_backoff(std::time::Duration::from_secs(2));
        let config = aws_sdk_ssm::config::Builder::from(&sdk).retry_config(retry).build();
        let out = aws_sdk_ssm::Client::from_conf(config)
            .get_parameter()
            .name(&name)
            .send()
            .await
            .map_err(|e| aws_sdk_ssm::error::DisplayErrorContext(e).to_string())?;
        out.parameter.and_then(|p| p.value).ok_or_else(|| format!("{name} has no value"))
    })
}

/// The public API's base URL for the links in emails where `PUBLIC_API_URL` is not given: the
/// value of the SSM parameter `PUBLIC_API_URL_PARAMETER` names (the stack writes its own HTTP
/// API's URL there), read once at start. A function that sends email does not start without it.
async fn public_api_url_from_parameter(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    read: ParameterReader,
) -> Result<String, ConfigError> {
    let name = config.public_api_url_parameter.clone().ok_or(ConfigError::Missing(Config::PUBLIC_API_URL))?;
    let invalid = |reason: String| ConfigError::Invalid { var: Config::PUBLIC_API_URL_PARAMETER, reason };
    let url = read(sdk.clone(), name.clone()).await.map_err(|e| invalid(format!("{name} not read: {e}")))?;
    let url = url.trim();
    if !crate::runtime::config::is_http_url(url) {
        return Err(invalid(format!("{name} holds {url:?}, not an http(s) URL")));
    }
    Ok(url.trim_end_matches('/').to_string())
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
    let mut settings = match services.email.is_some() || services.push.is_some() {
        true => Some(config.channel_settings()?),
        false => None,
    };
    // Where the links in emails point: `PUBLIC_API_URL` (already in the settings), else read.
    if let (Some((_, read)), Some(settings)) = (services.email, settings.as_mut())
        && settings.public_api_url.is_none()
    {
        settings.public_api_url = Some(public_api_url_from_parameter(sdk, config, read).await?);
    }
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
    let mailer = services
        .email
        .zip(email_from)
        .map(|((ses, _), from)| spawn(sdk, config, move |s, c| ses(s, c, from)));
    let push = services.push.map(|sns| spawn(sdk, config, sns));
    let mut ports = tables_ports(aws_sdk_dynamodb::Client::new(sdk), config);
    if let Some(queues) = queues {
        (ports.fanout_queue, ports.delivery_queue, ports.email_queue, ports.webhook_queue) =
            joined(queues).await;
    }
    if let Some(mailer) = mailer {
        ports.mailer = joined(mailer).await;
    }
    if let Some(push) = push {
        ports.push = joined(push).await;
    }
    ports.channels = settings;
    with_realtime(&mut ports, sdk, config);
    Ok(ports)
}

/// Deliveries and marks told to open WebSocket connections, in the functions configured for it
/// (`REALTIME_ENDPOINT` and `CONNECTIONS_TABLE`: deliver, notify and inbox, whose policies allow
/// `execute-api:ManageConnections`).
fn with_realtime(ports: &mut Ports, sdk: &aws_config::SdkConfig, config: &Config) {
    let (Some(endpoint), Some(_)) = (&config.realtime_endpoint, &config.connections_table) else { return };
    let mut builder = aws_sdk_apigatewaymanagement::config::Builder::from(sdk);
    // An endpoint set for every service (an emulator's) wins over the API's own.
    if sdk.endpoint_url().is_none() {
        builder = builder.endpoint_url(endpoint);
    }
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(builder.build());
    ports.realtime = Arc::new(crate::adapters::websocket::WebSocketRealtime::new(
        client,
        ports.connections.clone(),
        crate::dialects::inbox::websocket_message,
        crate::settings::REALTIME_POSTS_PER_SECOND,
    ));
}

/// The AWS set over given clients (the benchmark's count every request with an interceptor).
pub fn aws_ports_from(dynamo: aws_sdk_dynamodb::Client, sqs: aws_sdk_sqs::Client, config: &Config) -> Ports {
    let mut ports = tables_ports(dynamo, config);
    (ports.fanout_queue, ports.delivery_queue, ports.email_queue, ports.webhook_queue) =
        sqs_queues_of(sqs, config);
    ports
}

fn sqs_queues_of(sqs: aws_sdk_sqs::Client, config: &Config) -> Queues {
    (
        Arc::new(SqsQueue::new(sqs.clone(), &config.fanout_queue_url)),
        Arc::new(SqsQueue::new(sqs.clone(), &config.delivery_queue_url)),
        Arc::new(SqsQueue::new(sqs.clone(), &config.email_queue_url)),
        Arc::new(SqsQueue::new(sqs, &config.webhook_queue_url)),
    )
}

/// The tables over DynamoDB; no queues, email or push.
fn tables_ports(dynamo: aws_sdk_dynamodb::Client, config: &Config) -> Ports {
    Ports {
        notifications: Arc::new(
            DynamoNotificationStore::new(dynamo.clone(), &config.notifications_table, config.pending_shards)
                .content_apart(config.email_content_apart),
        ),
        inbox: Arc::new(DynamoInboxStore::new(dynamo.clone(), &config.inbox_table)),
        directory: Arc::new(DynamoDirectory::new(dynamo.clone(), &config.directory_table)),
        devices: Arc::new(DynamoDeviceStore::new(dynamo.clone(), &config.directory_table)),
        mailer: Arc::new(NoMailer),
        push: Arc::new(NoPush),
        // Told to open WebSocket connections in the functions configured for it (`with_realtime`).
        realtime: Arc::new(crate::ports::NoRealtime),
        connections: match &config.connections_table {
            Some(table) => Arc::new(DynamoConnectionStore::new(dynamo.clone(), table)),
            None => Arc::new(crate::adapters::memory::MemoryConnectionStore::new()),
        },
        channels: None,
        fanout_queue: Arc::new(NoQueue),
        delivery_queue: Arc::new(NoQueue),
        email_queue: Arc::new(NoQueue),
        webhook_queue: Arc::new(NoQueue),
        webhooks: Arc::new(crate::adapters::dynamodb::DynamoWebhookStore::new(
            dynamo.clone(),
            &config.notifications_table,
        )),
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        webhook: Arc::new(HttpWebhook::new(CALLBACK_TIMEOUT, config.outbound.clone())),
        settings: config.settings(),
    }
}

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
    async fn send_later(&self, _: &str, _: std::time::Duration) -> crate::error::StoreResult<()> {
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
    async fn publish(
        &self,
        _: &str,
        _: Platform,
        _: &crate::model::PushMessage,
    ) -> Result<String, SendError> {
        Err(SendError::Transient("push is not configured in this function".into()))
    }
}
