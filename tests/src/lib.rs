//! Test harness: the two backends every contract is checked against.
//!
//! The moto backend needs `AWS_ENDPOINT_URL` pointing at a running `moto_server`; the README's
//! test command (`scripts/test`) installs moto into `.venv`, starts it on a free loopback port
//! and sets the variable. Without it, moto tests fail with a message saying so: they never skip.

pub mod crowd;
pub mod faults;
pub mod hooks;
pub mod logs;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod views;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shared::ports::{ManualClock, SequentialIds};
use shared::runtime::Ports;
use shared::runtime::{MemoryPorts, Services, aws_ports, aws_sdk_config};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Every file under `dir` (recursively) whose extension is `ext`, sorted: what the source and
/// documentation checks read.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_with_extension(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A source file's code before its test module (`#[cfg(test)]` on): a test module may reach
/// further than its file, since it builds what it tests with.
pub fn code_before_tests(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `code` without its comments: comment lines, and what follows `//` on a line unless a `"`
/// comes before it (a URL in a string). Good enough for finding names and paths in code.
pub fn without_comments(code: &str) -> String {
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}

/// A fixed start time for clocks in tests.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z").expect("valid").with_timezone(&chrono::Utc)
}

/// Fresh in-memory ports.
pub fn memory_ports() -> Ports {
    MemoryPorts::new(Arc::new(ManualClock::new(t0())), Arc::new(SequentialIds::default())).ports
}

/// The moto endpoint, or a failure that says how to get one.
pub fn moto_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: these tests run against moto. Run `scripts/test` (it installs \
             moto[server] into .venv and starts it), or start `moto_server -p 5000` yourself and export \
             AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        ),
    }
}

/// Fresh DynamoDB tables and SQS queues on moto, provisioned from `template.yaml` under a
/// prefix of their own.
pub async fn provision_moto() -> (aws_config::SdkConfig, local::provision::Provisioned, shared::Config) {
    moto_endpoint();
    let sdk = aws_sdk_config().await;
    let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let parameters = outbox::moto_parameters(&sdk, &prefix).await;
    let provisioned = local::provision::provision(&sdk, &template_path(), &prefix, &parameters)
        .await
        .unwrap_or_else(|e| panic!("provisioning moto from template.yaml failed: {e}"));
    let config = provisioned.config().expect("template Globals define the whole config");
    (sdk, provisioned, config)
}

/// Ports over fresh moto tables and queues, with SES email and SNS push on moto.
pub async fn moto_ports() -> Ports {
    let (sdk, _, config) = provision_moto().await;
    aws_ports(&sdk, &config, Services::ALL).await.expect("the template configures email and push")
}

/// Declares each listed async test body `fn(Ports)` twice: against memory and against moto.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::memory_ports()).await
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::moto_ports().await).await
                }
            )*
        }
    };
}

/// A backend ready for end-to-end tests: ports over a manual clock, the demo directory loaded,
/// and the delivery dead-letter queue to look into.
pub struct Env {
    pub ports: Ports,
    pub clock: Arc<ManualClock>,
    pub delivery_dlq: Arc<dyn shared::ports::Queue>,
    pub max_receives: u32,
    /// What was emailed and pushed.
    pub outbox: outbox::Outbox,
    /// The SES configuration set emails go through (moto).
    pub configuration_set: Option<String>,
    /// Where SES's bounce and complaint events arrive (through SNS, raw).
    pub email_events: Arc<dyn shared::ports::Queue>,
    /// The prefix of its tables and queues on moto (a meter armed on it keeps time with the
    /// clock: [`Env::time_passes`]).
    pub moto_prefix: Option<String>,
}

/// A chunk DynamoDB throttled, or another attempt holds, is handed to a new message visible at
/// once: the tests move the clock (and the meter's) themselves, and the queues' delays are real
/// time, which the harness does not wait out, so a handed-over message could outlast the drain
/// that should see it (deliver's unit tests pin the waits as deployed).
pub fn unwaited_hand_overs(settings: &mut shared::settings::Settings) {
    settings.hand_overs.base = std::time::Duration::ZERO;
    settings.hand_overs.cap = std::time::Duration::ZERO;
}

impl Env {
    pub async fn memory() -> Env {
        let clock = Arc::new(ManualClock::new(t0()));
        let mut memory = MemoryPorts::new(clock.clone(), Arc::new(SequentialIds::default()));
        unwaited_hand_overs(&mut memory.ports.settings);
        memory.ports.webhook_queue =
            Arc::new(hooks::ClockedQueue::new(memory.ports.webhook_queue.clone(), clock.clone()));
        memory.load_demo_directory().await.expect("demo directory loads");
        let delivery_dlq =
            memory.delivery_queue.dead_letters().expect("memory delivery queue has a DLQ").clone();
        let outbox = outbox::Outbox::Memory { mailer: memory.mailer.clone(), push: memory.push.clone() };
        Env {
            ports: memory.ports,
            clock,
            delivery_dlq,
            max_receives: shared::runtime::MAX_RECEIVES,
            outbox,
            configuration_set: None,
            email_events: Arc::new(shared::adapters::memory::MemoryQueue::new(
                std::time::Duration::from_secs(30),
            )),
            moto_prefix: None,
        }
    }

    /// Time passes: the clock moves on by `d`, and so does the throughput a meter armed on the
    /// tables refills (`arm_meter`), as DynamoDB's would in that time.
    pub async fn time_passes(&self, d: chrono::Duration) {
        self.clock.advance(d);
        if let Some(prefix) = &self.moto_prefix {
            let seconds = d.num_milliseconds() as f64 / 1000.0;
            let body = serde_json::json!({"prefix": prefix, "advance": seconds});
            post_to(format!("{}/moto-serial/meter", moto_endpoint()), body).await
        }
    }

    pub async fn moto() -> Env {
        let (sdk, provisioned, config) = provision_moto().await;
        Env::moto_on(&sdk, &provisioned, &config).await
    }

    /// On tables and queues already provisioned.
    pub async fn moto_on(
        sdk: &aws_config::SdkConfig,
        provisioned: &local::provision::Provisioned,
        config: &shared::Config,
    ) -> Env {
        let (sdk, config) = (sdk.clone(), config.clone());
        let clock = Arc::new(ManualClock::new(t0()));
        let mut ports =
            aws_ports(&sdk, &config, Services::ALL).await.expect("the template configures email and push");
        ports.clock = clock.clone();
        unwaited_hand_overs(&mut ports.settings);
        // Status events' retries wait hours: their delays pass with the clock.
        ports.webhook_queue = Arc::new(hooks::ClockedQueue::new(ports.webhook_queue.clone(), clock.clone()));
        // The tests' callback receivers listen on loopback: allow it, and nothing else.
        ports.webhook = Arc::new(shared::adapters::webhook::HttpWebhook::new(
            shared::adapters::webhook::CALLBACK_TIMEOUT,
            shared::adapters::outbound::OutboundPolicy::loopback_allowed(),
        ));
        ports
            .directory
            .load(&shared::directory::DirectorySnapshot::demo())
            .await
            .expect("demo directory loads");
        let dlq_url = provisioned
            .queue_urls
            .get("DeliveryDeadLetterQueue")
            .expect("template declares the delivery DLQ");
        let delivery_dlq =
            Arc::new(shared::adapters::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), dlq_url));
        let outbox = outbox::Outbox::Moto { endpoint: moto_endpoint() };
        let configuration_set = config.ses_configuration_set.clone();
        let events_url =
            provisioned.queue_urls.get("EmailEventsQueue").expect("template declares the email events queue");
        let email_events =
            Arc::new(shared::adapters::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), events_url));
        Env {
            ports,
            clock,
            delivery_dlq,
            max_receives: config.max_receive_count,
            outbox,
            configuration_set,
            email_events,
            moto_prefix: Some(moto_prefix(provisioned)),
        }
    }

    /// The same backend with concurrent calls interleaving: on memory every store, queue and
    /// provider call gives way to other tasks at random (`faults::Faults::interleaving`), as
    /// calls to AWS do by waiting on the network; on moto as they are. Either way behind a
    /// schedule without faults that counts what happened (calls under way at once, claims won).
    pub fn interleaved(mut self, seed: u64) -> (Env, Arc<faults::Faults>) {
        let schedule = match self.outbox {
            outbox::Outbox::Memory { .. } => faults::Faults::interleaving(seed),
            outbox::Outbox::Moto { .. } => faults::Faults::none(),
        };
        self.ports = faults::faulty(&self.ports, &schedule);
        (self, schedule)
    }

    /// SES publishes `events` (event records, as the topic delivers them to the queue) and
    /// deliver consumes them as its event source would. Returns the records deliver failed.
    pub async fn ses_events(&self, events: &[serde_json::Value]) -> Vec<String> {
        let bodies: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        self.email_events.send_all(&bodies).await.expect("queue the SES events");
        let mut failed = Vec::new();
        loop {
            let messages = self.email_events.receive(10).await.expect("receive SES events");
            if messages.is_empty() {
                return failed;
            }
            let event = local::workers::sqs_event(local::workers::EMAIL_EVENTS_QUEUE_ARN, &messages);
            let response = deliver::handle(&self.ports, self.max_receives, event).await;
            let now_failed: Vec<String> =
                response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
            local::workers::settle(self.email_events.as_ref(), &messages, &now_failed).await.unwrap();
            if !now_failed.is_empty() {
                failed.extend(now_failed);
                return failed;
            }
        }
    }

    /// Limits email as an SES account is limited, `rate` per second and `daily` per 24 hours:
    /// the memory mailer's own limits, or moto-serial's on this test's configuration set.
    pub async fn limit_email(&self, rate: u32, daily: u32) {
        match (&self.outbox, &self.configuration_set) {
            (outbox::Outbox::Memory { mailer, .. }, _) => mailer.limit(rate, daily),
            (outbox::Outbox::Moto { .. }, Some(set)) => arm_ses_limits(set, rate, daily).await,
            (outbox::Outbox::Moto { .. }, None) => panic!("the template configures a configuration set"),
        }
    }
}

/// Declares each listed async test body `fn(Env)` twice: against memory and against moto.
#[macro_export]
macro_rules! end_to_end {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Env::memory().await).await
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Env::moto().await).await
                }
            )*
        }
    };
}

/// The identities `scripts/moto-iam` made on moto: the harness's administrator and one per
/// Lambda function, holding exactly that function's template policy.
pub fn moto_identities() -> serde_json::Value {
    let path = std::env::var("MOTO_IAM_IDENTITIES").unwrap_or_else(|_| {
        panic!(
            "MOTO_IAM_IDENTITIES is not set: these tests run each function under its own IAM policy on \
             moto. Run `scripts/test` (it starts moto, runs scripts/moto-iam and sets the variable)."
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The AWS services a function's composition root builds (`Services::NAME` in its `main.rs`).
pub fn services_of(package: &str) -> Services {
    let path = repo_root().join("functions").join(package).join("src/main.rs");
    let main = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = main
        .split("Services::")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !(c.is_ascii_uppercase() || c == '_')).next())
        .unwrap_or_else(|| panic!("{}: names no Services constant", path.display()));
    match name {
        "TABLES" => Services::TABLES,
        "QUEUES" => Services::QUEUES,
        "PUSH" => Services::PUSH,
        "ALL" => Services::ALL,
        other => panic!("{}: unknown Services::{other}", path.display()),
    }
}

/// Each Lambda function's ports on one moto provisioning, signed with that function's own
/// identity (see [`moto_identities`]), beside the harness's [`Env`] (administrator): what a
/// function's code does under its template policy, as on AWS.
pub struct Functions {
    pub env: Env,
    pub send: Ports,
    pub notify: Ports,
    pub sent_history: Ports,
    pub inbox: Ports,
    pub fanout: Ports,
    pub deliver: Ports,
    pub realtime: Ports,
}

/// The SDK configuration of a function's identity (`scripts/moto-iam`), by its logical id.
pub fn sdk_as(sdk: &aws_config::SdkConfig, logical_id: &str) -> aws_config::SdkConfig {
    let identities = moto_identities();
    let identity = &identities["functions"][logical_id];
    let key = identity["access_key_id"].as_str().unwrap_or_else(|| panic!("no identity for {logical_id}"));
    let secret = identity["secret_access_key"].as_str().expect("a secret key");
    let credentials = aws_sdk_sqs::config::Credentials::new(key, secret, None, None, "scripts/moto-iam");
    sdk.to_builder()
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
        .build()
}

impl Functions {
    pub async fn moto() -> Functions {
        let (sdk, provisioned, config) = provision_moto().await;
        Functions::on(&sdk, &provisioned, &config).await
    }

    /// On tables and queues already provisioned, with `sdk`'s settings (retries, timeouts) and
    /// each function's own credentials.
    pub async fn on(
        sdk: &aws_config::SdkConfig,
        provisioned: &local::provision::Provisioned,
        config: &shared::Config,
    ) -> Functions {
        let (sdk, config) = (sdk.clone(), config.clone());
        let env = Env::moto_on(&sdk, provisioned, &config).await;
        let as_function = |logical_id: &str, package: &str| {
            let sdk = sdk_as(&sdk, logical_id);
            let (config, clock, webhook) = (config.clone(), env.clock.clone(), env.ports.webhook.clone());
            let services = services_of(package);
            async move {
                let mut ports = aws_ports(&sdk, &config, services).await.expect("the template configures it");
                ports.clock = clock;
                ports.webhook = webhook;
                unwaited_hand_overs(&mut ports.settings);
                ports
            }
        };
        Functions {
            send: as_function("SendFunction", "send").await,
            notify: as_function("NotifyFunction", "notify").await,
            sent_history: as_function("SentHistoryFunction", "sent-history").await,
            inbox: as_function("InboxFunction", "inbox").await,
            fanout: as_function("FanoutFunction", "fanout").await,
            deliver: as_function("DeliverFunction", "deliver").await,
            realtime: {
                // Its composition root adds the link key that signs tickets.
                let mut ports = as_function("RealtimeFunction", "realtime").await;
                ports.channels = Some(config.channel_settings().expect("the template sets the link key"));
                ports
            },
            env,
        }
    }
}

impl Functions {
    /// One turn of the event source mappings of the fan-out, delivery and email queues: receives
    /// and deletes with the harness's identity (as the mapping does, under the permissions SAM
    /// gives it), handlers with the functions' own; a record a handler reports failed is made
    /// visible again for redelivery, and the clock moves past the lease its attempt held (as
    /// SQS's visibility timeout passes before it hands the record out again). Chunks in batches of 10 and email jobs one per invocation,
    /// as the template's event sources hand them out. Returns the messages handled and the
    /// records that failed (`queue: message id`).
    pub async fn event_sources_once(&self) -> (usize, Vec<String>) {
        let (mut handled, mut failures) = (0, Vec::new());
        let jobs = self.env.ports.fanout_queue.receive(10).await.expect("receive fan-out jobs");
        if !jobs.is_empty() {
            handled += jobs.len();
            let event = local::workers::sqs_event(local::workers::FANOUT_QUEUE_ARN, &jobs);
            let failed: Vec<String> = match fanout::handle(&self.fanout, fanout::Trigger::Queue(event)).await
            {
                Ok(fanout::Answer::Batch(b)) => {
                    b.batch_item_failures.into_iter().map(|i| i.item_identifier).collect()
                }
                Ok(fanout::Answer::Tick { .. }) => Vec::new(),
                Err(e) => panic!("a queue trigger answers per record: {e}"),
            };
            local::workers::settle(self.env.ports.fanout_queue.as_ref(), &jobs, &failed)
                .await
                .expect("settle");
            failures.extend(failed.into_iter().map(|id| format!("fan-out job {id}")));
        }
        for (queue, source, batch, what) in [
            (
                self.env.ports.delivery_queue.as_ref(),
                local::workers::DELIVERY_QUEUE_ARN,
                10,
                "delivery chunk",
            ),
            (self.env.ports.email_queue.as_ref(), local::workers::EMAIL_QUEUE_ARN, 1, "email job"),
            (
                self.env.ports.webhook_queue.as_ref(),
                local::workers::WEBHOOK_QUEUE_ARN,
                10,
                "status event try",
            ),
        ] {
            let messages = queue.receive(batch).await.expect("receive");
            if messages.is_empty() {
                continue;
            }
            handled += messages.len();
            let response = deliver::handle(
                &self.deliver,
                self.env.max_receives,
                local::workers::sqs_event(source, &messages),
            )
            .await;
            let failed: Vec<String> =
                response.batch_item_failures.into_iter().map(|i| i.item_identifier).collect();
            local::workers::settle(queue, &messages, &failed).await.expect("settle");
            if !failed.is_empty() {
                // SQS hands a failed record out again only after its queue's visibility timeout,
                // which parity.rs pins above the lease the attempt held: by then that lease has
                // run out, even when the attempt could not hand it back.
                self.env.time_passes(past_a_work_lease()).await;
            }
            failures.extend(failed.into_iter().map(|id| format!("{what} {id}")));
        }
        (handled, failures)
    }
}

/// The least time that passes before SQS hands a failed chunk or email job out again: longer
/// than the lease its attempt held (`WORK_LEASE`; the queues' visibility timeouts are longer).
pub fn past_a_work_lease() -> chrono::Duration {
    chrono::Duration::from_std(shared::service::deadline::WORK_LEASE).expect("a lease in range")
        + chrono::Duration::seconds(1)
}

/// Arms a failure AWS produces and moto never does, on one of this test's tables
/// (`scripts/moto-serial`): the next `count` requests of `operation` naming `table` fail with
/// `code` (for TransactWriteItems a cancellation reason: `TransactionConflict`,
/// `ThrottlingError`; otherwise an error code such as `InternalServerError`).
pub async fn arm_fault(table: &str, operation: &str, count: u32, code: &str) {
    post_to_moto_serial(
        serde_json::json!({"table": table, "operation": operation, "count": count, "code": code}),
    )
    .await;
}

/// SES refuses every email to these addresses sent through `configuration_set` (400
/// MessageRejected quoting the address, as SES refuses one outside the sandbox's verified ones).
pub async fn arm_ses_refusal(configuration_set: &str, addresses: &[&str]) {
    post_to_moto_serial(
        serde_json::json!({"service": "ses", "configuration_set": configuration_set, "refuse": addresses}),
    )
    .await;
}

/// SNS refuses the next `count` publishes to endpoints of the platform application named
/// `application` (400 InvalidParameter quoting the endpoint's token, as SNS does).
pub async fn arm_sns_refusal(application: &str, count: u32) {
    post_to_moto_serial(serde_json::json!({"service": "sns", "application": application, "count": count}))
        .await;
}

async fn post_to_moto_serial(body: serde_json::Value) {
    post_to(format!("{}/moto-serial/faults", moto_endpoint()), body).await
}

async fn post_to(uri: String, body: serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .expect("a request");
    let response = client.request(request).await.expect("moto-serial answers");
    let status = response.status();
    let text = response.into_body().collect().await.expect("a body").to_bytes();
    assert!(status.is_success(), "arming a fault: {status} {}", String::from_utf8_lossy(&text));
}

/// A group send as a retrying caller makes it (company 3's admin, with `key` as its
/// Idempotency-Key): the status, which must be 200 or one a caller retries (503, 409 "in
/// progress"), and on 200 the schedule id answered (version 2 answers none).
pub async fn send_with_key(ports: &Ports, body: &serde_json::Value, key: &str) -> (u16, Option<u64>) {
    let req = shared::http::GatewayRequest::new("POST", "/rest/notification/send", "/rest/notification/send")
        .header("x-nextinteract-authtoken", "demo-admin-token")
        .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
        .header("idempotency-key", key)
        .body(body.to_string());
    let resp = send::handle(ports, req.into_request()).await;
    let status = resp.status().as_u16();
    let text = shared::http::body_text(&resp);
    assert!(status == 200 || status == 503 || status == 409, "unexpected {status}: {text}");
    let id = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["notificationScheduleId"].as_u64());
    (status, id.filter(|_| status == 200))
}

/// Arms chaos on every table and queue whose name starts with `prefix` (one test's, see
/// [`moto_prefix`]): each DynamoDB request and each SendMessage(Batch) fails with probability
/// `rate`, in one of the ways AWS fails them, drawn from `seed` (`scripts/moto-serial`'s
/// `_arm_chaos`: throttling, 5xx, the answer lost after the request took effect, UnprocessedItems
/// and UnprocessedKeys, failed SendMessageBatch entries, transactions cancelled for a conflict).
/// A rate of 0 disarms it. The harness's own requests (the administrator's identity, observing)
/// are spared; every function's are not.
pub async fn arm_chaos(prefix: &str, seed: u64, rate: f64) {
    let admin = moto_identities()["admin"]["access_key_id"].as_str().map(str::to_string);
    let body = serde_json::json!({"prefix": prefix, "seed": seed, "rate": rate, "spare": admin.into_iter().collect::<Vec<_>>()});
    post_to(format!("{}/moto-serial/chaos", moto_endpoint()), body).await
}

/// How many failures of each kind (and `Operation:kind`) chaos injected under `prefix`.
pub async fn chaos_counts(prefix: &str) -> std::collections::BTreeMap<String, u64> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri = format!("{}/moto-serial/chaos/{prefix}", moto_endpoint());
    let response = client.get(uri.parse().expect("a URI")).await.expect("moto-serial answers");
    let text = response.into_body().collect().await.expect("a body").to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    serde_json::from_value(value["counts"].clone()).expect("counts")
}

/// Bills every DynamoDB request to the tables under `prefix` as DynamoDB bills it, and with
/// `scale` > 0 enforces DynamoDB's throughput scaled by it: 1,000 x scale write units a second
/// per partition key, `table_wcu` x scale per table; 3,000 x scale read units a second per
/// partition key, 12,000 x scale per table or index (`scripts/dynamodb_meter.py`).
pub async fn arm_meter(prefix: &str, scale: f64, table_wcu: f64) {
    let body = serde_json::json!({"prefix": prefix, "scale": scale, "table_wcu": table_wcu});
    post_to(format!("{}/moto-serial/meter", moto_endpoint()), body).await
}

/// `arm_meter` with reads scaled apart: `read_scale` of 3,000 read units a second per partition
/// key and of `table_rcu` per table or index (0: reads are billed, never throttled).
pub async fn arm_meter_with_reads(prefix: &str, scale: f64, table_wcu: f64, read_scale: f64, table_rcu: f64) {
    let body = serde_json::json!({"prefix": prefix, "scale": scale, "table_wcu": table_wcu,
        "read_scale": read_scale, "table_rcu": table_rcu});
    post_to(format!("{}/moto-serial/meter", moto_endpoint()), body).await
}

/// The table rate to arm a meter with, as the template deploys the broadcast's tables by
/// default: its `TableWarmWriteUnits` default, 4,000 (what a new on-demand table starts with; a
/// higher default would pre-warm the Notifications and Inbox tables to it). The meter applies it
/// to every table under its prefix, the template to those two, the ones a broadcast writes.
pub fn table_write_units() -> f64 {
    let template = local::provision::read_template(&template_path()).expect("template.yaml parses");
    template["Parameters"]["TableWarmWriteUnits"]["Default"]
        .as_f64()
        .expect("template.yaml: TableWarmWriteUnits has a numeric default")
}

/// What the meter armed under `prefix` billed: `write_units`, `read_units`, `tables`
/// (per table and `table/index`), `operations`, `hottest_keys`, `peak_key_second`, `throttled`.
pub async fn metered(prefix: &str) -> serde_json::Value {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri = format!("{}/moto-serial/meter/{prefix}", moto_endpoint());
    let response = client.get(uri.parse().expect("a URI")).await.expect("moto-serial answers");
    assert!(response.status().is_success(), "no meter armed under {prefix}");
    let text = response.into_body().collect().await.expect("a body").to_bytes();
    serde_json::from_slice(&text).expect("JSON")
}

/// The prefix of a provisioning's resource names (every table and queue starts with it).
pub fn moto_prefix(provisioned: &local::provision::Provisioned) -> String {
    let table = provisioned.tables.values().next().expect("the template declares tables");
    let end = table.find('-').expect("prefixed names") + 1;
    table[..end].to_string()
}

/// Limits emails sent through `configuration_set` as an SES account is limited: `rate` per
/// second, `daily` per 24 hours (`scripts/moto-serial`).
pub async fn arm_ses_limits(configuration_set: &str, rate: u32, daily: u32) {
    post_to_moto_serial(serde_json::json!({
        "service": "ses", "configuration_set": configuration_set, "rate": rate, "daily": daily
    }))
    .await;
}

/// What moto accepted for a WebSocket connection through the @connections API
/// (`PostToConnection`), in order (`scripts/moto-serial` keeps it).
pub async fn posted_to(connection: &str) -> Vec<String> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri = format!("{}/_realtime/posted/{connection}", moto_endpoint());
    let response = client.get(uri.parse().expect("a URI")).await.expect("moto-serial answers");
    let text = response.into_body().collect().await.expect("a body").to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    value["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect()
}

/// Closes a WebSocket connection as API Gateway does when its client goes away: a later post to
/// it answers 410 Gone (`scripts/moto-serial`).
pub async fn close_connection(connection: &str) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let request = hyper::Request::post(format!("{}/_realtime/close/{connection}", moto_endpoint()))
        .body(Empty::new())
        .expect("a request");
    let response = client.request(request).await.expect("moto-serial answers");
    assert!(response.status().is_success());
    let _ = response.into_body().collect().await;
}

/// An app notification (`SendAppNotification`, as the demo admin) to `user`, delivered by the
/// workers; its id.
pub async fn notify_app(env: &Env, user: &str, title: &str) -> uuid::Uuid {
    use shared::http::{GatewayRequest, body_text};
    let body = serde_json::json!({"Title": title, "Body": "b", "Recipient": format!("/systemusers({user})")});
    let path = "/api/data/v9.2/SendAppNotification";
    let req = GatewayRequest::new("POST", path, path)
        .header("authorization", "Bearer demo-admin-token")
        .body(body.to_string());
    let resp = notify::handle(&env.ports, req.into_request()).await;
    let text = body_text(&resp);
    assert_eq!(resp.status(), 200, "{text}");
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    answer["NotificationId"].as_str().unwrap().parse().unwrap()
}
