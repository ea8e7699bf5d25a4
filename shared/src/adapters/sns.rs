//! Mobile push through Amazon SNS platform endpoints, following SNS's guidance for device
//! registration: create the endpoint; if the token already has one with other attributes, take
//! its ARN from the error and set the attributes (owner, enabled) instead.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::ProvideErrorMetadata;

use super::send_error;
use serde_json::json;

use crate::model::{Platform, PushMessage, UserId};
use crate::ports::{PushGateway, SendError};

pub struct SnsPush {
    client: Client,
    /// Platform application ARN per platform (those configured).
    applications: Vec<(Platform, String)>,
}

impl SnsPush {
    pub fn new(client: Client, applications: Vec<(Platform, String)>) -> Self {
        SnsPush { client, applications }
    }

    fn application(&self, platform: Platform) -> Option<&str> {
        self.applications.iter().find(|(p, _)| *p == platform).map(|(_, arn)| arn.as_str())
    }

    /// CreatePlatformEndpoint answers the existing endpoint for a token it already knows with the
    /// same attributes, and leaves it as it is: disabled, when the push service had reported the
    /// token invalid before the app registered it again. So a registration reads the endpoint
    /// and turns it back on (with this token and person) when it is off, as SNS's guide for
    /// mobile tokens says, instead of relying on the "different attributes" error.
    async fn enable_if_disabled(&self, arn: &str, token: &str, user: UserId) -> Result<(), SendError> {
        let attributes = self
            .client
            .get_endpoint_attributes()
            .endpoint_arn(arn)
            .send()
            .await
            .map_err(|e| send_error(e, &["InvalidParameter"], &["NotFound"]))?
            .attributes
            .unwrap_or_default();
        let enabled = attributes.get("Enabled").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if enabled && attributes.get("Token").map(String::as_str) == Some(token) {
            return Ok(());
        }
        self.take_over(arn, token, user).await
    }

    /// Points an existing endpoint at this token and person, enabled.
    async fn take_over(&self, arn: &str, token: &str, user: UserId) -> Result<(), SendError> {
        self.client
            .set_endpoint_attributes()
            .endpoint_arn(arn)
            .attributes("CustomUserData", user.to_string())
            .attributes("Enabled", "true")
            .attributes("Token", token)
            .send()
            .await
            .map_err(|e| send_error(e, &["InvalidParameter"], &["NotFound"]))?;
        Ok(())
    }
}

/// The ARN in SNS's "Endpoint {arn} already exists with the same Token, but different attributes."
fn existing_endpoint(message: &str) -> Option<&str> {
    let start = message.find("Endpoint ")? + "Endpoint ".len();
    let rest = &message[start..];
    let end = rest.find(' ')?;
    Some(&rest[..end]).filter(|arn| arn.starts_with("arn:"))
}

#[async_trait]
impl PushGateway for SnsPush {
    fn supports(&self, platform: Platform) -> bool {
        self.application(platform).is_some()
    }

    async fn create_endpoint(
        &self,
        platform: Platform,
        token: &str,
        user: UserId,
    ) -> Result<String, SendError> {
        let app = self.application(platform).ok_or_else(|| {
            SendError::Rejected(format!("no {} application is configured", platform.as_str()))
        })?;
        let created = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(app)
            .token(token)
            .custom_user_data(user.to_string())
            .send()
            .await;
        match created {
            Ok(out) => {
                let arn = out
                    .endpoint_arn
                    .ok_or_else(|| SendError::Transient("SNS returned no endpoint ARN".into()))?;
                self.enable_if_disabled(&arn, token, user).await?;
                Ok(arn)
            }
            Err(e) => {
                let arn = e.as_service_error().and_then(|se| se.message()).and_then(existing_endpoint);
                let Some(arn) = arn.map(str::to_string) else {
                    return Err(send_error(e, &["InvalidParameter", "InvalidParameterValue"], &[]));
                };
                self.take_over(&arn, token, user).await?;
                Ok(arn)
            }
        }
    }

    async fn delete_endpoint(&self, endpoint: &str) -> Result<(), SendError> {
        match self.client.delete_endpoint().endpoint_arn(endpoint).send().await {
            Ok(_) => Ok(()),
            Err(e) => match send_error(e, &["InvalidParameter"], &["NotFound"]) {
                SendError::Gone(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn publish(
        &self,
        endpoint: &str,
        platform: Platform,
        message: &PushMessage,
    ) -> Result<String, SendError> {
        let out = self
            .client
            .publish()
            .target_arn(endpoint)
            .message(platform_message(message, platform))
            .message_structure("json")
            .send()
            .await
            .map_err(|e| send_error(e, PUBLISH_REFUSED, PUBLISH_GONE))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Publish's failures that trying again would not mend (SNS's Publish errors): this message, or
/// every message to its platform until an operator acts — a disabled platform application (an
/// expired APNs certificate, a revoked FCM key), a policy or KMS key that refuses. Counted as
/// failed sends, never a chunk's failure. Throttling (`Throttled`, `KMSThrottling`),
/// `InternalError`, any 5xx and timeouts are transient.
const PUBLISH_REFUSED: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "ValidationException",
    "PlatformApplicationDisabled",
    "AuthorizationError",
    "InvalidSecurity",
    "KMSAccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
];

/// Publish's failures that say the endpoint is no more: the device is forgotten.
const PUBLISH_GONE: &[&str] = &["EndpointDisabled", "NotFound"];

/// The SNS message for one platform: `default` plus the platform's own JSON, within its size
/// limit. The body is shortened to fit (never the JSON, which must stay valid).
pub fn platform_message(m: &PushMessage, platform: Platform) -> String {
    let title: String = m.title.chars().take(120).collect();
    let build = |body: &str| -> String {
        let payload = match platform {
            Platform::Apns | Platform::ApnsSandbox => json!({
                "aps": {
                    "alert": { "title": title, "body": body },
                    "sound": "default",
                    "thread-id": m.notification_id.to_string(),
                },
                "notificationId": m.notification_id.to_string(),
                "url": m.url,
                "badge": { "increment": 1 },
            }),
            Platform::Gcm => json!({
                "fcmV1Message": {
                    "message": {
                        "notification": { "title": title, "body": body },
                        "data": {
                            "notificationId": m.notification_id.to_string(),
                            "url": m.url.clone().unwrap_or_default(),
                            "badgeIncrement": "1",
                        },
                        "android": { "priority": if m.high_priority { "high" } else { "normal" } },
                    }
                }
            }),
        };
        payload.to_string()
    };
    let limit = platform.payload_limit();
    let mut body = m.body.clone();
    let mut payload = build(&body);
    if payload.len() > limit {
        // The longest prefix (at a character boundary) that fits with the ellipsis: escaping
        // makes JSON longer than the text by an amount that depends on the text, so search.
        let full = std::mem::take(&mut body);
        let boundaries: Vec<usize> = full.char_indices().map(|(i, _)| i).collect();
        let fits = |cut: usize| build(&format!("{}…", &full[..cut])).len() <= limit;
        let (mut lo, mut hi) = (0usize, boundaries.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(boundaries[mid.min(boundaries.len() - 1)]) && mid < boundaries.len() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        body = if lo == 0 && !fits(0) { String::new() } else { format!("{}…", &full[..boundaries[lo]]) };
        payload = build(&body);
    }
    let mut message = serde_json::Map::new();
    message.insert("default".into(), json!(body));
    message.insert(platform.as_str().into(), json!(payload));
    serde_json::Value::Object(message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> PushMessage {
        PushMessage {
            notification_id: uuid::Uuid::from_u128(1),
            title: "Title".into(),
            body: body.into(),
            url: None,
            high_priority: false,
        }
    }

    #[test]
    fn push_messages_fit_the_platform_and_stay_valid_json() {
        for platform in Platform::ALL {
            for body in ["short", &"é\"<".repeat(3000), &"x".repeat(10_000)] {
                let message = platform_message(&message(body), platform);
                let outer: serde_json::Value = serde_json::from_str(&message).unwrap();
                let inner = outer[platform.as_str()].as_str().unwrap();
                assert!(inner.len() <= platform.payload_limit(), "{} bytes", inner.len());
                let payload: serde_json::Value = serde_json::from_str(inner).unwrap();
                let shown = match platform {
                    Platform::Gcm => payload["fcmV1Message"]["message"]["notification"]["body"].clone(),
                    _ => payload["aps"]["alert"]["body"].clone(),
                };
                let shown = shown.as_str().unwrap();
                if body == "short" {
                    assert_eq!(shown, "short");
                } else {
                    assert!(shown.ends_with('…') && shown.len() > 1000, "{platform:?}: {}", shown.len());
                }
            }
        }
    }

    /// Each of SNS's Publish errors lands where the push path expects it: refusals are counted
    /// failed sends (an expired certificate never fails a chunk), a gone endpoint forgets its
    /// device, throttling and 5xx are tried again.
    #[test]
    fn publish_failures_are_sorted_by_what_they_mean() {
        use aws_sdk_dynamodb::config::http::HttpResponse;
        use aws_sdk_dynamodb::error::SdkError;
        let publish_error = |code: &str, status: u16| {
            let meta = aws_sdk_sns::error::ErrorMetadata::builder().code(code).message("m").build();
            let raw = HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            );
            let e: SdkError<aws_sdk_sns::operation::publish::PublishError, HttpResponse> =
                SdkError::service_error(aws_sdk_sns::operation::publish::PublishError::generic(meta), raw);
            match send_error(e, PUBLISH_REFUSED, PUBLISH_GONE) {
                SendError::Rejected(_) => "refused",
                SendError::Gone(_) => "gone",
                SendError::Transient(_) => "transient",
            }
        };
        for (code, status, expected) in [
            ("PlatformApplicationDisabled", 400, "refused"),
            ("AuthorizationError", 403, "refused"),
            ("InvalidSecurity", 403, "refused"),
            ("KMSAccessDenied", 400, "refused"),
            ("KMSDisabled", 400, "refused"),
            ("KMSInvalidState", 400, "refused"),
            ("KMSNotFound", 400, "refused"),
            ("KMSOptInRequired", 403, "refused"),
            ("InvalidParameter", 400, "refused"),
            ("InvalidParameterValue", 400, "refused"),
            ("EndpointDisabled", 400, "gone"),
            ("NotFound", 404, "gone"),
            ("Throttled", 429, "transient"),
            ("KMSThrottling", 400, "transient"),
            ("InternalError", 500, "transient"),
            ("SomethingNew", 503, "transient"),
        ] {
            assert_eq!(publish_error(code, status), expected, "{code}");
        }
    }

    #[test]
    fn finds_the_arn_in_the_duplicate_endpoint_message() {
        let m = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:eu-west-1:123:endpoint/GCM/app/1f2e already exists with the same Token, but different attributes.";
        assert_eq!(existing_endpoint(m), Some("arn:aws:sns:eu-west-1:123:endpoint/GCM/app/1f2e"));
        assert_eq!(existing_endpoint("Invalid parameter: Token"), None);
    }
}
