//! The cold-start baseline: the smallest `lambda_runtime` function that makes one HTTPS request
//! per invocation (a GET of `HELLO_URL`) with the functions' TLS stack (rustls on aws-lc, hyper),
//! trusting the certificates of `SSL_CERT_FILE`, and answers the status it got. Built with the
//! same release profile and link flags as the service's functions.

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url: hyper::Uri = std::env::var("HELLO_URL")?.parse()?;
    let https =
        hyper_rustls::HttpsConnectorBuilder::new().with_native_roots()?.https_only().enable_http1().build();
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let (client, url) = (&client, &url);
    run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let response = client.get(url.clone()).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok::<_, Error>(serde_json::json!({ "status": status }))
    }))
    .await
}
