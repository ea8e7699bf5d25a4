//! Test harness: the two backends every contract is checked against.
//!
//! The moto backend needs `AWS_ENDPOINT_URL` pointing at a running `moto_server`; the README's
//! test command (`scripts/test`) installs moto into `.venv`, starts it on a free loopback port
//! and sets the variable. Without it, moto tests fail with a message saying so: they never skip.

use std::path::PathBuf;
use std::sync::Arc;

use shared::ports::{ManualClock, SequentialIds};
use shared::runtime::{MemoryPorts, Ports, aws_ports, aws_sdk_config};

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}

/// A fixed start time for clocks in tests.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-22T09:00:00Z").expect("valid").with_timezone(&chrono::Utc)
}

/// Fresh in-memory ports.
pub fn memory_ports() -> Ports {
    MemoryPorts::new(Arc::new(ManualClock::new(t0())), Arc::new(SequentialIds::default())).ports
}

/// The moto endpoint, or a failure that says how to get one.
pub fn moto_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: these tests run against moto. Run `scripts/test` (it installs \
             moto[server] into .venv and starts it), or start `moto_server -p 5000` yourself and export \
             AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        ),
    }
}

/// Fresh DynamoDB tables and SQS queues on moto, provisioned from `template.yaml` under a
/// prefix of their own, and the ports over them.
pub async fn moto_ports() -> Ports {
    moto_endpoint();
    let sdk = aws_sdk_config().await;
    let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let provisioned = local::provision::provision(&sdk, &template_path(), &prefix)
        .await
        .unwrap_or_else(|e| panic!("provisioning moto from template.yaml failed: {e}"));
    let config = provisioned.config().expect("template Globals define the whole config");
    aws_ports(&sdk, &config)
}

/// Declares each listed async test body `fn(Ports)` twice: against memory and against moto.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::memory_ports()).await
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::moto_ports().await).await
                }
            )*
        }
    };
}
