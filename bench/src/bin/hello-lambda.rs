//! The cold-start baseline: the smallest `lambda_runtime` function (echoes its event), built
//! with the same release profile as the service's functions.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async move { Ok::<_, Error>(event.payload) }))
        .await
}
