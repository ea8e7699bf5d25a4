//! Outbound HTTP for callbacks, on the hyper/rustls stack the AWS SDK already brings. The TLS
//! roots are loaded on the first callback, not at cold start: most invocations never call out.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OnceCell;

use super::outbound::{GuardedResolver, OutboundPolicy};
use crate::ports::{PostError, Webhook};

type HttpsClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Reads at most this much of a callback response (we only need its status).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub struct HttpWebhook {
    client: OnceCell<Result<HttpsClient, String>>,
    timeout: Duration,
    policy: OutboundPolicy,
}

impl HttpWebhook {
    pub fn new(timeout: Duration, policy: OutboundPolicy) -> Self {
        HttpWebhook { client: OnceCell::new(), timeout, policy }
    }

    async fn client(&self) -> Result<&HttpsClient, String> {
        let built = self
            .client
            .get_or_init(|| async {
                let mut http = HttpConnector::new_with_resolver(GuardedResolver::new(self.policy.clone()));
                http.enforce_http(false);
                http.set_connect_timeout(Some(Duration::from_secs(3)));
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| format!("cannot load TLS roots: {e}"))?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Ok(Client::builder(TokioExecutor::new()).build(https))
            })
            .await;
        built.as_ref().map_err(Clone::clone)
    }
}

/// Time one callback try may take.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

#[async_trait]
impl Webhook for HttpWebhook {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, PostError> {
        let uri: hyper::Uri = url.parse().map_err(|e| PostError::Refused(format!("invalid URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(PostError::Refused("only http and https callbacks are allowed".into()));
        }
        // IP literals never reach the resolver: check them here.
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>()
            && !self.policy.permits(ip)
        {
            return Err(PostError::Refused(format!("{ip} is not an address callbacks may reach")));
        }
        let mut req = hyper::Request::post(uri).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| PostError::Refused(e.to_string()))?;
        let client = self.client().await.map_err(PostError::Failed)?;
        // One request, never following redirects (hyper's client does not), within the timeout.
        let resp = tokio::time::timeout(self.timeout, client.request(req))
            .await
            .map_err(|_| PostError::Failed(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| {
                // The guarded resolver refusing every address is a refusal, not a network error.
                let text = format!("{e:?}");
                if text.contains("PermissionDenied") {
                    PostError::Refused("the host resolves to no address callbacks may reach".into())
                } else {
                    PostError::Failed(format!("request failed: {e}"))
                }
            })?;
        let status = resp.status().as_u16();
        let _ =
            tokio::time::timeout(self.timeout, Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect())
                .await;
        Ok(status)
    }
}
