//! Adapters of the ports: in-memory (embedded default, unit tests) and AWS (DynamoDB, SQS).

pub mod dynamodb;
pub mod memory;
pub mod sqs;

mod retry;
pub use retry::Backoff;
