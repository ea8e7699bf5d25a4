//! Composition root of the fan-out function.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::runtime::{Services, aws_ports, aws_sdk_config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = shared::Config::from_env()?;
    let ports = aws_ports(&aws_sdk_config().await, &config, Services::QUEUES).await?;
    let ports = &ports;
    run(service_fn(move |event: LambdaEvent<fanout::Trigger>| async move {
        let deadline = shared::service::deadline::Deadline::from_epoch_ms(event.context.deadline);
        fanout::handle_within(ports, event.payload, deadline).await.map_err(Error::from)
    }))
    .await
}
