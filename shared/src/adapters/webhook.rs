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
    resolver: GuardedResolver,
}

impl HttpWebhook {
    pub fn new(timeout: Duration, policy: OutboundPolicy) -> Self {
        let resolver = GuardedResolver::new(policy.clone());
        HttpWebhook { client: OnceCell::new(), timeout, policy, resolver }
    }

    /// With names resolved from `hosts` instead of the system resolver (tests: DNS answering an
    /// internal address for a public-looking name).
    pub fn with_hosts(
        timeout: Duration,
        policy: OutboundPolicy,
        hosts: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
    ) -> Self {
        let resolver = GuardedResolver::with_hosts(policy.clone(), hosts);
        HttpWebhook { client: OnceCell::new(), timeout, policy, resolver }
    }

    async fn client(&self) -> Result<&HttpsClient, String> {
        let built = self
            .client
            .get_or_init(|| async {
                let mut http = HttpConnector::new_with_resolver(self.resolver.clone());
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
                    PostError::Failed(crate::redact::redact(&format!("request failed: {e}")))
                }
            })?;
        let status = resp.status().as_u16();
        let _ =
            tokio::time::timeout(self.timeout, Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect())
                .await;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS cannot slip past the policy: a name that resolves to an internal address is refused
    /// before any connection, as the address itself would be; a name the policy permits is
    /// reached.
    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let internal = [
            ("loopback.test", "127.0.0.1"),
            ("private.test", "10.1.2.3"),
            ("link-local.test", "169.254.10.10"),
            ("metadata.test", "169.254.169.254"),
            ("v6-loopback.test", "::1"),
            ("mapped.test", "::ffff:169.254.169.254"),
            ("nat64.test", "64:ff9b::a9fe:a9fe"),
            ("unique-local.test", "fd00::1"),
        ];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let mut hosts: std::collections::HashMap<String, Vec<std::net::IpAddr>> =
            internal.iter().map(|(name, ip)| (name.to_string(), vec![ip.parse().unwrap()])).collect();
        hosts.insert("allowed.test".into(), vec!["127.0.0.1".parse().unwrap()]);
        let public =
            HttpWebhook::with_hosts(Duration::from_secs(2), OutboundPolicy::public_only(), hosts.clone());
        for (name, ip) in internal {
            let refused = public.post(&format!("http://{name}:{port}/cb"), &[], "{}").await;
            assert!(matches!(refused, Err(PostError::Refused(_))), "{name} -> {ip}: {refused:?}");
        }
        // The control: the same resolver, a policy that permits loopback, reaches the listener.
        let allowed =
            HttpWebhook::with_hosts(Duration::from_secs(2), OutboundPolicy::loopback_allowed(), hosts);
        assert_eq!(allowed.post(&format!("http://allowed.test:{port}/cb"), &[], "{}").await.unwrap(), 204);
    }
}
