//! Composition root: configuration and clients are built once per cold start; a missing
//! variable stops the init with its name.

use lambda_http::{Error, Request, run, service_fn};
use shared::runtime::{aws_ports, aws_sdk_config, with_push};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = shared::Config::from_env()?;
    let sdk = aws_sdk_config().await;
    let ports = with_push(aws_ports(&sdk, &config), &sdk, &config)?;
    let ports = &ports;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(inbox::handle(ports, req).await) })).await
}
