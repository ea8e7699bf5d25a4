//! Status webhooks under test: a receiver on loopback that records each POST (headers and body)
//! and answers with a script of statuses; a Standard Webhooks verifier written from the scheme's
//! description (not the service's signer); and a queue whose delays pass with the tests' clock.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::Mac;
use shared::ports::{Clock, ManualClock, Queue, ReceivedMessage};

/// One POST a receiver got.
#[derive(Debug, Clone)]
pub struct Post {
    /// Every header line, as sent (a name twice is two entries).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Post {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// How many times header `name` was sent.
    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(k, _)| k == name).count()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A receiver on loopback answering the given statuses in turn (then 200).
pub struct Receiver {
    pub url: String,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Receiver {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let script = Arc::new(Mutex::new(statuses.into_iter()));
        let log = posts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let (log, script) = (log.clone(), script.clone());
                            async move {
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())
                                    })
                                    .collect();
                                let bytes = req.into_body().collect().await.unwrap().to_bytes();
                                let body = String::from_utf8(bytes.to_vec()).unwrap();
                                log.lock().unwrap().push(Post { headers, body });
                                let status = script.lock().unwrap().next().unwrap_or(200);
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(bytes::Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, posts }
    }

    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

/// Whether `post` carries a Standard Webhooks signature by `secret` (`whsec_` and base64): the
/// signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 keyed by the
/// decoded secret, base64; `webhook-signature` lists `v1,{signature}` entries, space-separated.
pub fn signed_by(post: &Post, secret: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    let content = format!("{}.{}.{}", post.header("webhook-id"), post.header("webhook-timestamp"), post.body);
    mac.update(content.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    post.header("webhook-signature").split(' ').any(|s| s == expected)
}

/// A queue whose delayed messages become visible when the tests' clock passes their time (the
/// harness moves the clock, not real time): held here until then, then sent to `inner`.
pub struct ClockedQueue {
    pub inner: Arc<dyn Queue>,
    clock: Arc<ManualClock>,
    /// Each message's time, body and trace (kept, as SQS keeps a message's attributes).
    held: Mutex<Vec<(DateTime<Utc>, String, shared::trace::Trace)>>,
}

impl ClockedQueue {
    pub fn new(inner: Arc<dyn Queue>, clock: Arc<ManualClock>) -> ClockedQueue {
        ClockedQueue { inner, clock, held: Mutex::default() }
    }

    /// Messages waiting for their time.
    pub fn waiting(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

#[async_trait]
impl Queue for ClockedQueue {
    async fn send_all(&self, bodies: &[String]) -> shared::error::StoreResult<()> {
        self.inner.send_all(bodies).await
    }
    async fn send_later(&self, body: &str, delay: std::time::Duration) -> shared::error::StoreResult<()> {
        // SQS's limit holds: a longer delay is refused rather than kept.
        assert!(delay.as_secs() <= 900, "SQS delays at most 15 minutes: {delay:?}");
        let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap();
        self.held.lock().unwrap().push((at, body.to_string(), shared::trace::current()));
        Ok(())
    }
    async fn receive(&self, max: usize) -> shared::error::StoreResult<Vec<ReceivedMessage>> {
        let now = self.clock.now();
        let due: Vec<(String, shared::trace::Trace)> = {
            let mut held = self.held.lock().unwrap();
            let (due, later): (Vec<_>, Vec<_>) = held.drain(..).partition(|(at, _, _)| *at <= now);
            *held = later;
            due.into_iter().map(|(_, body, trace)| (body, trace)).collect()
        };
        for (body, trace) in due {
            shared::trace::within(trace, self.inner.send_all(&[body])).await?;
        }
        self.inner.receive(max).await
    }
    async fn ack(&self, receipt: &str) -> shared::error::StoreResult<()> {
        self.inner.ack(receipt).await
    }
    async fn nack(&self, receipt: &str) -> shared::error::StoreResult<()> {
        self.inner.nack(receipt).await
    }
}
