//! The AWS SDK's configuration and HTTPS client, tuned for cold starts.

use std::time::Duration;

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
    // A global endpoint (an emulator's, `sam local`): ours to apply; declared but empty (the
    // template's variable when deployed) it is no setting at all.
    const GLOBAL_ENDPOINT: &str = "AWS_ENDPOINT_URL";
    let get =
        |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    get("AWS_LAMBDA_FUNCTION_NAME")?;
    let other_settings = vars.iter().any(|(k, _)| {
        k.starts_with("AWS_")
            && k != GLOBAL_ENDPOINT
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
    let mut builder = aws_config::SdkConfig::builder();
    if let Some(endpoint) = get(GLOBAL_ENDPOINT) {
        builder = builder.endpoint_url(endpoint);
    }
    Some(
        builder
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
        for setting in ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE", "AWS_USE_FIPS_ENDPOINT"] {
            assert!(lambda_sdk_config(&with(setting, "x")).is_none(), "{setting}");
        }
        // A global endpoint (`sam local` against an emulator) is applied; declared empty (as the
        // template declares it when deployed) it is nothing.
        let emulated = lambda_sdk_config(&with("AWS_ENDPOINT_URL", "http://172.17.0.1:5000")).unwrap();
        assert_eq!(emulated.endpoint_url(), Some("http://172.17.0.1:5000"));
        assert_eq!(lambda_sdk_config(&with("AWS_ENDPOINT_URL", "")).unwrap().endpoint_url(), None);
        assert!(lambda_sdk_config(&with("AWS_LAMBDA_LOG_FORMAT", "JSON")).is_some());
        assert!(lambda_sdk_config(&with("AWS_XRAY_DAEMON_ADDRESS", "169.254.79.129:2000")).is_some());
        // Read by our HTTPS client, so not a reason to take the chain.
        assert!(lambda_sdk_config(&with(CA_BUNDLE, "/etc/proxy-ca.pem")).is_some());
    }
}
