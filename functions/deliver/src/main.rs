//! Composition root of the deliver function.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::runtime::{Services, aws_ports, aws_sdk_config};

// One thread: a function handles one invocation at a time on a fraction of a vCPU (256 MB is
// 0.145), where worker threads only add their start at init and a cross-thread wake-up to every
// request (bench cold-start; docs/decisions/0002-current-thread-runtime.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = shared::Config::from_env()?;
    let sources = deliver::Sources::from_config(&config)?;
    let ports = aws_ports(&aws_sdk_config().await, &config, Services::ALL).await?;
    let deps = deliver::Deps::new(&ports, sources, config.max_receive_count);
    let deps = &deps;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = shared::service::deadline::Deadline::from_epoch_ms(event.context.deadline);
        Ok::<_, Error>(deliver::handle_batch(deps, event.payload, deadline).await)
    }))
    .await
}
