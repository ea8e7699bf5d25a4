//! The outbound channels: email (SES), mobile push (SNS) and callbacks (HTTP POST). Each
//! answers with what its failure means for a retry (`SendError`, `PostError`).

use async_trait::async_trait;

use crate::model::*;

/// One email, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Extra headers (List-Unsubscribe).
    pub headers: Vec<(String, String)>,
    /// The notification it is about: SES publishes it with the email's bounce and complaint
    /// events (a message tag), so that they are counted on it.
    pub notification: Option<NotificationId>,
}

/// Why an email or a push was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (a rejected address, a malformed payload): do not try again.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The push endpoint is disabled or deleted: the device should be forgotten.
    #[error("endpoint gone: {0}")]
    Gone(String),
    /// Throttling, timeouts, a paused account: try again later.
    #[error("{0}")]
    Transient(String),
}

/// Sends email (Amazon SES v2).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email; the provider's message id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, SendError>;
}

/// Mobile push (Amazon SNS platform endpoints).
#[async_trait]
pub trait PushGateway: Send + Sync {
    /// Whether a platform application is configured for `platform`.
    fn supports(&self, platform: Platform) -> bool;
    /// Creates (or finds, and enables) the platform endpoint of a token, owned by `user`.
    async fn create_endpoint(
        &self,
        platform: Platform,
        token: &str,
        user: UserId,
    ) -> Result<String, SendError>;
    /// Deletes an endpoint; deleting one that is gone succeeds.
    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), SendError>;
    /// Publishes an SNS message with per-platform JSON (`MessageStructure=json`).
    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &PushMessage,
    ) -> Result<String, SendError>;
}

/// Why a POST got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The destination is not allowed (scheme, private address): retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// Network trouble or a timeout: worth another try.
    #[error("{0}")]
    Failed(String),
}

/// Outbound HTTP for callbacks: one POST, no redirects followed, bounded time.
#[async_trait]
pub trait Webhook: Send + Sync {
    /// POSTs `body` with `headers`; the response status, or why there was none.
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, PostError>;
}
