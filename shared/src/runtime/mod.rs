//! Composition: the configuration (`config`), the bag of every port (`ports::Ports`) built from
//! memory (`memory`) or from AWS (`aws`), the deps each use case takes, built from the bag, and
//! the SDK's cold-start work (`sdk`). Shared by every composition root (Lambda
//! `main.rs`, the local runner, tests). Nothing here holds a rule.

pub mod aws;
pub mod config;
pub mod deps;
pub mod memory;
pub mod ports;
pub mod sdk;

pub use aws::{Services, aws_ports, aws_ports_from};
pub use memory::{LOCAL_PUBLIC_API_URL, MAX_RECEIVES, MemoryPorts};
pub use ports::Ports;
pub use sdk::{CA_BUNDLE, aws_https_client, aws_sdk_config, lambda_sdk_config};
