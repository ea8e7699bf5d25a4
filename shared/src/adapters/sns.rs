//! Mobile push through Amazon SNS platform endpoints, following SNS's guidance for device
//! registration: create the endpoint; if the token already has one with other attributes, take
//! its ARN from the error and set the attributes (owner, enabled) instead.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::ProvideErrorMetadata;

use super::send_error;
use crate::model::{Platform, UserId};
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

    async fn publish(&self, endpoint: &str, message: &str) -> Result<String, SendError> {
        let out = self
            .client
            .publish()
            .target_arn(endpoint)
            .message(message)
            .message_structure("json")
            .send()
            .await
            .map_err(|e| {
                send_error(
                    e,
                    &["InvalidParameter", "InvalidParameterValue", "ValidationException"],
                    &["EndpointDisabled", "NotFound"],
                )
            })?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_arn_in_the_duplicate_endpoint_message() {
        let m = "Invalid parameter: Token Reason: Endpoint arn:aws:sns:eu-west-1:123:endpoint/GCM/app/1f2e already exists with the same Token, but different attributes.";
        assert_eq!(existing_endpoint(m), Some("arn:aws:sns:eu-west-1:123:endpoint/GCM/app/1f2e"));
        assert_eq!(existing_endpoint("Invalid parameter: Token"), None);
    }
}
