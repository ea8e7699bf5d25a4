//! What the service emailed and pushed, read back from the memory adapters or from moto (which
//! records SES messages and SNS endpoint publishes; `scripts/moto-serial`'s `/moto-serial/outbox`
//! lists them as moto's `/moto-api/data.json` does, without the rest of moto's state).

use std::collections::BTreeMap;
use std::sync::Arc;

use http_body_util::{BodyExt, Empty};
use shared::adapters::memory::{MemoryMailer, MemoryPush};

pub enum Outbox {
    Memory { mailer: Arc<MemoryMailer>, push: Arc<MemoryPush> },
    Moto { endpoint: String },
}

/// An email as the provider recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub to: Vec<String>,
    pub subject: String,
    /// The HTML part.
    pub html: String,
}

/// A publish to a platform endpoint: the endpoint's ARN and the SNS message (JSON structure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPush {
    pub endpoint: String,
    pub message: String,
}

async fn get(url: &str) -> String {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let resp = client.get(url.parse().expect("a URL")).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.into_body().collect().await.expect("moto answers").to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

impl Outbox {
    /// Emails whose subject is `subject` (tests use unique subjects: moto is shared).
    pub async fn emails(&self, subject: &str) -> Vec<SentEmail> {
        let mut all = match self {
            Outbox::Memory { mailer, .. } => mailer
                .sent()
                .into_iter()
                .map(|e| SentEmail { to: vec![e.to], subject: e.subject, html: e.html })
                .collect(),
            Outbox::Moto { endpoint } => {
                let data: serde_json::Value =
                    serde_json::from_str(&get(&format!("{endpoint}/moto-serial/outbox")).await)
                        .expect("JSON");
                data["ses"]["Message"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| SentEmail {
                        to: m["destinations"]["ToAddresses"]
                            .as_array()
                            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
                            .unwrap_or_default(),
                        subject: m["subject"].as_str().unwrap_or_default().to_string(),
                        html: m["body"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect::<Vec<_>>()
            }
        };
        all.retain(|e| e.subject == subject);
        all.sort_by(|a, b| a.to.cmp(&b.to));
        all
    }

    /// Disables an endpoint, as the push service does when it reports its token invalid.
    pub async fn disable_endpoint(&self, endpoint: &str) {
        match self {
            Outbox::Memory { push, .. } => push.disable(endpoint),
            Outbox::Moto { .. } => {
                let sdk = shared::runtime::aws_sdk_config().await;
                aws_sdk_sns::Client::new(&sdk)
                    .set_endpoint_attributes()
                    .endpoint_arn(endpoint)
                    .attributes("Enabled", "false")
                    .send()
                    .await
                    .expect("SNS disables the endpoint");
            }
        }
    }

    /// Publishes to the given endpoints.
    pub async fn pushes(&self, endpoints: &[String]) -> Vec<SentPush> {
        let mut all: Vec<SentPush> = match self {
            Outbox::Memory { push, .. } => push
                .published()
                .into_iter()
                .map(|(endpoint, message)| SentPush { endpoint, message })
                .collect(),
            Outbox::Moto { endpoint } => {
                let data: serde_json::Value =
                    serde_json::from_str(&get(&format!("{endpoint}/moto-serial/outbox")).await)
                        .expect("JSON");
                data["sns"]["PlatformEndpoint"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|e| {
                        let arn = e["arn"].as_str().unwrap_or_default().to_string();
                        let messages: BTreeMap<String, String> =
                            serde_json::from_value(e["messages"].clone()).unwrap_or_default();
                        messages.into_values().map(move |message| SentPush { endpoint: arn.clone(), message })
                    })
                    .collect()
            }
        };
        all.retain(|p| endpoints.contains(&p.endpoint));
        all.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        all
    }
}

/// The template parameters without defaults, and SNS platform applications created on moto for
/// this test (SNS platform applications are not CloudFormation resources: a deployment passes
/// their ARNs as parameters). And `EmailContentApart=true`: the suite runs the shape a stage
/// stores in once upgraded (docs/deploy.md); the default's, the earlier shape, is written and
/// read by `retries.rs` (`an_email_stored_before_the_upgrade_reads_as_it_did`).
pub async fn moto_parameters(sdk: &aws_config::SdkConfig, prefix: &str) -> BTreeMap<String, String> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let mut parameters = BTreeMap::from([
        ("PublicApiUrl".to_string(), "https://api.test.example".to_string()),
        ("EmailFromAddress".to_string(), "notifications@mail.test.example".to_string()),
        ("EmailContentApart".to_string(), "true".to_string()),
    ]);
    for (platform, parameter) in [
        ("APNS", "ApnsApplicationArn"),
        ("APNS_SANDBOX", "ApnsSandboxApplicationArn"),
        ("GCM", "GcmApplicationArn"),
    ] {
        let arn = sns
            .create_platform_application()
            .name(format!("{prefix}{platform}").trim_end_matches('-').replace('_', "-"))
            .platform(platform)
            .attributes("PlatformCredential", "test-credential")
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating the {platform} application on moto: {e:?}"))
            .platform_application_arn
            .expect("an application ARN");
        parameters.insert(parameter.to_string(), arn);
    }
    parameters
}
