//! Department callbacks: after delivery, the outcome is POSTed to the caller's `callBackUrl`,
//! signed with HMAC-SHA256 over the body. The key is the SHA-256 of the department's secret
//! (the only form we store; the department computes it from the secret it holds). Retries on
//! network errors, 429 and 5xx with capped exponential backoff and jitter; gives up after a
//! bounded number of tries; the result is recorded on the notification.

use super::deadline::Deadline;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::backoff::Backoff;
use crate::model::*;
use crate::ports::{Accounts, Clock, DeliveryLedger, NotificationLookup, PostError, Webhook};

/// What giving up on a notification and sending its callback use.
pub struct CallbackDeps<'a> {
    pub(crate) lookup: &'a dyn NotificationLookup,
    pub(crate) ledger: &'a dyn DeliveryLedger,
    pub(crate) accounts: &'a dyn Accounts,
    pub(crate) webhook: &'a dyn Webhook,
    pub(crate) clock: &'a dyn Clock,
    /// Tries and backoff of a callback.
    pub(crate) retry: Backoff,
    /// The tenant's status events (`notification.delivered`, `.failed`), settled with it.
    pub(crate) hooks: super::webhooks::EmitDeps<'a>,
}

pub const SIGNATURE_HEADER: &str = "x-signature-sha256";

/// The body a callback carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackBody {
    #[serde(rename = "notificationMessageUUID")]
    pub notification_message_uuid: NotificationId,
    #[serde(rename = "requestUUID")]
    pub request_uuid: uuid::Uuid,
    #[serde(rename = "departmentUUID")]
    pub department_uuid: uuid::Uuid,
    #[serde(rename = "userUUID")]
    pub user_uuid: uuid::Uuid,
    /// SUCCESS or FAILURE.
    pub status: &'static str,
    pub delivered: u64,
    pub errors: Vec<serde_json::Value>,
    pub call_back_metadata: Option<serde_json::Value>,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

/// `sha256=<hex>` of HMAC-SHA256(key = SHA-256(secret) bytes, body).
pub fn signature(secret_sha256_hex: &str, body: &str) -> String {
    let key = hex::decode(secret_sha256_hex).unwrap_or_else(|_| secret_sha256_hex.as_bytes().to_vec());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The one way a notification is given up on (its audience is gone, or a chunk failed at its
/// last allowed receive): it is marked Failed with the reason, then its completion callback
/// (FAILURE) is sent if it has one. A callback failure never undoes the marking.
pub async fn give_up(
    ports: &CallbackDeps<'_>,
    id: NotificationId,
    reason: &str,
) -> Result<(), crate::StoreError> {
    ports.ledger.mark_failed(id, reason, ports.clock.now()).await?;
    if let Some(failed) = ports.lookup.get(id).await?
        && !send_if_due(ports, &failed).await
    {
        return Err(crate::StoreError::Transient(format!(
            "{id}: the failure's status events are not settled yet"
        )));
    }
    Ok(())
}

/// Settles a finished notification's status events (`webhooks::settle`) and sends its callback
/// (delivered or failed) unless one was already recorded. At-least-once: a crash between
/// sending and recording sends again, so receivers should dedupe on `notificationMessageUUID`.
/// `false`: its status events could not be settled (the store or the queue failing): what
/// called it fails, so that its retry settles them (the callback waits for that retry).
pub async fn send_if_due(ports: &CallbackDeps<'_>, n: &Notification) -> bool {
    send_if_due_within(ports, n, Deadline::NONE).await
}

/// No callback try starts this close to the invocation's deadline: a try takes up to twice
/// `adapters::webhook::CALLBACK_TIMEOUT` (5 s for the answer, 5 s for its body), and recording
/// its outcome a moment more. (The wait between tries comes before the check.)
pub const CALLBACK_MARGIN: std::time::Duration = std::time::Duration::from_secs(13);

/// `send_if_due` within an invocation's `deadline`: no try starts `CALLBACK_MARGIN` before it.
/// `false` when the deadline came before the tries had an outcome, or the status events could
/// not be settled: nothing is recorded, what is owed is still owed, and the next handling of
/// the notification does it.
pub async fn send_if_due_within(ports: &CallbackDeps<'_>, n: &Notification, deadline: Deadline) -> bool {
    if matches!(n.status, Status::Delivered | Status::Failed)
        && !super::webhooks::settle(&ports.hooks, n).await
    {
        return false;
    }
    let Some(cb) = &n.callback else { return true };
    if n.callback_result.is_some() || !matches!(n.status, Status::Delivered | Status::Failed) {
        return true;
    }
    let secret = match ports.accounts.department(cb.department_id).await {
        Ok(Some(d)) => d.secret_sha256,
        Ok(None) => {
            tracing::warn!(notification = %n.id, "department gone; callback not sent");
            return true;
        }
        Err(e) => {
            tracing::warn!(notification = %n.id, error = %e, "directory unavailable; callback not sent");
            return true;
        }
    };
    let delivered = n.status == Status::Delivered;
    let body = CallbackBody {
        notification_message_uuid: n.id,
        request_uuid: cb.request_id,
        department_uuid: cb.department_id,
        user_uuid: cb.user_id,
        status: if delivered { "SUCCESS" } else { "FAILURE" },
        delivered: n.delivered,
        errors: n
            .failure
            .iter()
            .map(|f| serde_json::json!({ "errorCode": "DELIVERY_FAILED", "errorDescription": f, "errorUID": n.id }))
            .collect(),
        call_back_metadata: cb.metadata.clone(),
        timestamp: ports.clock.now(),
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    let headers = vec![
        (SIGNATURE_HEADER.to_string(), signature(&secret, &text)),
        ("x-notification-id".to_string(), n.id.to_string()),
    ];
    let Some(result) = post_with_retries(ports, &cb.url, &headers, &text, ports.retry, deadline).await else {
        tracing::warn!(notification = %n.id, "the deadline came before the callback's tries ended: it is still owed");
        return false;
    };
    if !result.delivered {
        tracing::warn!(notification = %n.id, attempts = result.attempts, status = ?result.last_status, error = ?result.error, "callback given up");
    }
    match ports.ledger.record_callback(n.id, &result).await {
        // Counted with its record: one not recorded is sent again, and counted then.
        Ok(()) => {
            let metric = match result.delivered {
                true => crate::metrics::Metric::CallbacksSent,
                false => crate::metrics::Metric::CallbacksFailed,
            };
            crate::metrics::count(metric, 1, &[]);
        }
        Err(e) => tracing::warn!(notification = %n.id, error = %e, "callback result not recorded"),
    }
    true
}

async fn post_with_retries(
    ports: &CallbackDeps<'_>,
    url: &str,
    headers: &[(String, String)],
    body: &str,
    policy: Backoff,
    deadline: Deadline,
) -> Option<CallbackResult> {
    let mut attempts = 0;
    loop {
        if !deadline.allows(ports.clock.now(), CALLBACK_MARGIN) {
            return None;
        }
        attempts += 1;
        let outcome = ports.webhook.post(url, headers, body).await;
        let (retry, status, error) = match outcome {
            Ok(s) if (200..300).contains(&s) => {
                return Some(CallbackResult {
                    delivered: true,
                    attempts,
                    last_status: Some(s),
                    error: None,
                    at: ports.clock.now(),
                });
            }
            Ok(s) if s == 429 || s >= 500 => (true, Some(s), Some(format!("HTTP {s}"))),
            Ok(s) if (300..400).contains(&s) => {
                (false, Some(s), Some(format!("HTTP {s}: redirects are not followed")))
            }
            Ok(s) => (false, Some(s), Some(format!("HTTP {s}"))),
            Err(PostError::Refused(why)) => (false, None, Some(why)),
            Err(PostError::Failed(why)) => (true, None, Some(why)),
        };
        if !retry || attempts >= policy.max_attempts {
            return Some(CallbackResult {
                delivered: false,
                attempts,
                last_status: status,
                error,
                at: ports.clock.now(),
            });
        }
        tokio::time::sleep(policy.delay(attempts)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_keyed_by_the_secret_digest() {
        let key = crate::credentials::digest("demo-secret");
        let sig = signature(&key, "{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_eq!(sig, signature(&key, "{}"));
        assert_ne!(sig, signature(&key, "{ }"));
        assert_ne!(sig, signature(&crate::credentials::digest("other"), "{}"));
    }
}
