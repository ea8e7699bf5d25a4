//! The one error type of the service and its mapping to HTTP.
//!
//! What went wrong is said once, in the domain's terms (`ErrorKind`, the field, why); how it is
//! rendered — exception names, error codes, envelope shape — is each dialect's business, in one
//! place per dialect (`dialects::ws` for group send, sent history and the recipient's routes,
//! `dialects::department`, the desktop `responseCode` object, the OData error).

use serde::Serialize;

/// What went wrong, independent of the dialect that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorKind {
    InvalidParameter,
    InvalidAuthToken,
    InsufficientPermissions,
    InsufficientPrivileges,
    UnsupportedVersion,
    EventNotFound,
    EventCancelled,
    SmartLibNotFound,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    TooManyRequests,
    FeatureDisabled,
    /// Storage or queue temporarily unavailable (throttling, timeouts): the caller may retry.
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidParameter
            | ErrorKind::UnsupportedVersion
            | ErrorKind::EventCancelled
            | ErrorKind::FeatureDisabled => 400,
            ErrorKind::InvalidAuthToken => 401,
            ErrorKind::InsufficientPermissions | ErrorKind::InsufficientPrivileges => 403,
            ErrorKind::EventNotFound | ErrorKind::SmartLibNotFound | ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// A request-level failure: what kind, a human message, and the field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub parameter: Option<String>,
    /// Seconds a client should wait (429 / 503).
    pub retry_after: Option<u64>,
    /// What failed underneath (a storage error's text): logged with a 5xx, never answered.
    pub cause: Option<String>,
    /// Of a conflict: the state the thing asked about is in (`delivered`), which each dialect's
    /// envelope answers beside the message.
    pub state: Option<&'static str>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            parameter: None,
            retry_after: None,
            cause: None,
            state: None,
        }
    }

    /// An invalid-parameter error naming the field at fault.
    pub fn invalid(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorKind::InvalidParameter,
            message: message.into(),
            parameter: Some(parameter.into()),
            retry_after: None,
            cause: None,
            state: None,
        }
    }

    /// With the underlying failure, for the log.
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    pub fn with_state(mut self, state: &'static str) -> Self {
        self.state = Some(state);
        self
    }

    pub fn with_parameter(mut self, parameter: impl Into<String>) -> Self {
        self.parameter = Some(parameter.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

/// Failures of a storage or queue adapter. Conflicts are expected outcomes of conditional writes;
/// the rest are infrastructure failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in another state (already exists, already claimed ...).
    #[error("conditional write rejected: {0}")]
    Conflict(String),
    /// Throttling, timeouts and 5xx: safe to retry later.
    #[error("transient storage failure: {0}")]
    Transient(String),
    /// Stored data that cannot be read back (a bug or a manual edit).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A continuation token the store cannot continue from (not one it issued, or for another
    /// query): the caller's mistake, named `nextToken`.
    #[error("{0}")]
    BadToken(String),
    #[error("storage failure: {0}")]
    Other(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::new(ErrorKind::Conflict, m),
            StoreError::Transient(cause) => {
                let mut err = ApiError::new(
                    ErrorKind::Unavailable,
                    "the service is temporarily unavailable; retry shortly",
                )
                .caused_by(cause);
                err.retry_after = Some(1);
                err
            }
            StoreError::BadToken(m) => ApiError::invalid("nextToken", m),
            StoreError::InvalidData(cause) | StoreError::Other(cause) => {
                ApiError::new(ErrorKind::Internal, "internal error").caused_by(cause)
            }
        }
    }
}

/// The codes (and our own words) of a refusal for throughput: DynamoDB's
/// `ProvisionedThroughputExceededException`, `ThrottlingException`, `RequestLimitExceeded`, a
/// transaction cancelled with `ThrottlingError` (or for contention, retried until given up
/// here), a batch's items left unprocessed after every retry (DynamoDB's way of throttling a
/// batch), SQS's `RequestThrottled`.
const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceeded",
    "ThrottlingException",
    "ThrottlingError",
    "RequestLimitExceeded",
    "RequestThrottled",
    "cancelled for contention",
    "still unprocessed",
];

impl StoreError {
    /// Whether the store refused for throughput: the answer is to wait, not to count an attempt
    /// (a refused request did nothing).
    pub fn is_throttling(&self) -> bool {
        matches!(self, StoreError::Transient(text) if THROTTLING.iter().any(|code| text.contains(code)))
    }
}

/// Why a delivery step (a chunk, an email job, feedback) did not complete.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Will not succeed on retry (malformed message, notification gone).
    #[error("{0}")]
    Permanent(String),
    /// May succeed on retry (throttling, timeouts).
    #[error(transparent)]
    Transient(#[from] StoreError),
}

impl DeliverError {
    /// See [`StoreError::is_throttling`].
    pub fn is_throttling(&self) -> bool {
        matches!(self, DeliverError::Transient(e) if e.is_throttling())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_store_errors_become_retryable_503() {
        let e: ApiError = StoreError::Transient("throttled".into()).into();
        assert_eq!(e.status(), 503);
        assert_eq!(e.retry_after, Some(1));
        assert_eq!(e.cause.as_deref(), Some("throttled"), "kept for the log");
        assert!(!e.message.contains("throttled"), "never answered");
        let e: ApiError = StoreError::Other("AccessDeniedException: not authorized".into()).into();
        assert_eq!((e.status(), e.message.as_str()), (500, "internal error"));
        assert_eq!(e.cause.as_deref(), Some("AccessDeniedException: not authorized"));
        let e: ApiError = StoreError::BadToken("nextToken is not valid".into()).into();
        assert_eq!(e.status(), 400);
        assert_eq!(e.parameter.as_deref(), Some("nextToken"));
        let e: ApiError = StoreError::InvalidData("nextToken in a bad item".into()).into();
        assert_eq!(e.status(), 500, "no rule matches on message text");
    }

    /// DynamoDB throttles a batch by leaving its items unprocessed: a batch still unprocessed
    /// after every retry is throttling (waited out in a new message), as the exceptions are.
    #[test]
    fn a_batch_left_unprocessed_is_throttling() {
        for text in [
            "3 entries still unprocessed after 5 attempts",
            "3 items still unprocessed after 5 attempts",
            "3 keys still unprocessed after 5 attempts",
            "service error: ProvisionedThroughputExceededException: …",
        ] {
            assert!(StoreError::Transient(text.into()).is_throttling(), "{text}");
        }
        assert!(!StoreError::Transient("InternalServerError".into()).is_throttling());
    }
}
