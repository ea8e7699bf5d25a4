//! Adapters of the ports: in-memory (embedded default, unit tests) and AWS (DynamoDB, SQS, SES,
//! SNS).

pub mod dynamodb;
pub mod memory;
pub mod outbound;
pub mod ses;
pub mod sns;
pub mod sqs;
pub mod webhook;
pub mod websocket;

// Every AWS SDK crate re-exports the same smithy error types; DynamoDB's serve for SES and SNS.
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ports::SendError;

/// Maps an SES or SNS failure: error codes in `rejected` are refusals of this one message,
/// codes in `gone` mean the destination no longer exists; everything else (throttling, 5xx,
/// timeouts, a paused account, missing permissions) is worth trying again later.
pub(crate) fn send_error<E>(e: SdkError<E, HttpResponse>, rejected: &[&str], gone: &[&str]) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.as_service_error().and_then(|se| se.code()).unwrap_or_default().to_string();
    let text = crate::redact::redact(&DisplayErrorContext(&e).to_string());
    if gone.contains(&code.as_str()) {
        SendError::Gone(text)
    } else if rejected.contains(&code.as_str()) {
        SendError::Rejected(text)
    } else {
        SendError::Transient(text)
    }
}
