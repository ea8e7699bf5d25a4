//! Composition root of the realtime function: its tables (connections, and the notifications
//! table for tickets' single use) and the link key that signs tickets.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::runtime::{Services, aws_ports, aws_sdk_config};

// One thread: a function handles one invocation at a time on a fraction of a vCPU (256 MB is
// 0.145), where worker threads only add their start at init and a cross-thread wake-up to every
// request (bench cold-start; docs/decisions/0002-current-thread-runtime.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = shared::Config::from_env()?;
    let mut ports = aws_ports(&aws_sdk_config().await, &config, Services::TABLES).await?;
    ports.channels = Some(config.channel_settings()?);
    let deps = realtime::Deps::new(&ports);
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest>| async move {
        Ok::<_, Error>(realtime::handle_event(deps, event.payload).await)
    }))
    .await
}
