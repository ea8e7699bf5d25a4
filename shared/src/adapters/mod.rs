//! Adapters of the ports: in-memory (embedded default, unit tests) and AWS (DynamoDB, SQS).

pub mod dynamodb;
pub mod memory;
pub mod outbound;
pub mod sqs;
pub mod webhook;

mod retry;
pub use retry::Backoff;
