//! Composition root: configuration and clients are built once per cold start; a missing
//! variable stops the init with its name.

use lambda_http::{Error, Request, run, service_fn};
use shared::runtime::{Services, aws_ports, aws_sdk_config};

// One thread: a function handles one invocation at a time on a fraction of a vCPU (256 MB is
// 0.145), where worker threads only add their start at init and a cross-thread wake-up to every
// request (bench cold-start; docs/decisions/0002-current-thread-runtime.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = shared::Config::from_env()?;
    let ports = aws_ports(&aws_sdk_config().await, &config, Services::PUSH).await?;
    let deps = inbox::Deps::new(&ports);
    let deps = &deps;
    run(service_fn(move |req: Request| async move { Ok::<_, Error>(inbox::handle_request(deps, req).await) }))
        .await
}
