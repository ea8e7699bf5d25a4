//! Composition: the bag of ports a service needs, built from memory (`memory`) or from AWS
//! (`aws`), and the SDK's cold-start work (`sdk`). Shared by every composition root (Lambda
//! `main.rs`, the local runner, tests). Nothing here holds a rule.

pub mod aws;
pub mod memory;
pub mod sdk;

pub use aws::{Services, aws_ports, aws_ports_from};
pub use memory::{LOCAL_PUBLIC_API_URL, MAX_RECEIVES, MemoryPorts};
pub use sdk::{CA_BUNDLE, aws_https_client, aws_sdk_config, lambda_sdk_config};
