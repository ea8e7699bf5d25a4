//! The devices people register for mobile push, and the unsubscribe links of emails.

use serde::Serialize;

use crate::error::{ApiError, ErrorKind};
use crate::model::*;
use crate::ports::SendError;
use crate::runtime::{MAX_DEVICES_PER_USER, Ports};

/// A registration as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub device_id: String,
    pub platform: Platform,
    /// The last characters of the token: enough to recognise it, no more.
    pub token_suffix: String,
    pub registered_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        let start = d.token.len().saturating_sub(8);
        DeviceView {
            device_id: d.device_id.clone(),
            platform: d.platform,
            token_suffix: d.token.get(start..).unwrap_or_default().to_string(),
            registered_at: d.registered_at,
        }
    }
}

/// Parses `{"platform": "APNS" | "APNS_SANDBOX" | "GCM", "token": "..."}`.
pub fn parse_registration(body: &[u8]) -> Result<(Platform, String), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body", format!("the body is not JSON: {e}")))?;
    let object =
        value.as_object().ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| !["platform", "token"].contains(&k.as_str())) {
        return Err(ApiError::invalid(unknown.clone(), format!("{unknown} is not a field of a device")));
    }
    let platform =
        object.get("platform").and_then(|p| p.as_str()).and_then(Platform::parse).ok_or_else(|| {
            ApiError::invalid("platform", "platform must be one of APNS, APNS_SANDBOX, GCM")
        })?;
    let token = object
        .get("token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ApiError::invalid("token", "token is required (a string)"))?;
    Ok((platform, check_token(platform, token)?))
}

/// APNs device tokens are hex (64 digits today; Apple may lengthen them); FCM registration
/// tokens are up to a few hundred URL-safe characters.
fn check_token(platform: Platform, token: &str) -> Result<String, ApiError> {
    let ok = match platform {
        Platform::Apns | Platform::ApnsSandbox => {
            (64..=200).contains(&token.len()) && token.chars().all(|c| c.is_ascii_hexdigit())
        }
        Platform::Gcm => {
            (1..=4096).contains(&token.len())
                && token.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        }
    };
    if !ok {
        let rule = match platform {
            Platform::Gcm => "1 to 4096 characters of letters, digits, '-', '_', ':' and '.'",
            _ => "64 to 200 hexadecimal digits",
        };
        return Err(ApiError::invalid("token", format!("a {} token is {rule}", platform.as_str())));
    }
    // APNs tokens are case-insensitive: one spelling, one device.
    Ok(match platform {
        Platform::Gcm => token.to_string(),
        _ => token.to_ascii_lowercase(),
    })
}

fn only_self(viewer: &User, owner: UserId) -> Result<(), ApiError> {
    if viewer.id == owner {
        Ok(())
    } else {
        Err(ApiError::new(ErrorKind::InsufficientPermissions, "you may only manage your own devices"))
    }
}

fn push_failure(e: SendError) -> ApiError {
    match e {
        SendError::Rejected(why) | SendError::Gone(why) => {
            ApiError::invalid("token", format!("the push service refused the token: {why}"))
        }
        SendError::Transient(why) => {
            ApiError::new(ErrorKind::Unavailable, format!("the push service is unavailable: {why}"))
        }
    }
}

/// Registers (or refreshes) a device of `owner`; `true` when it is new. Registering the same
/// token again is the same device, re-enabled.
pub async fn register(
    ports: &Ports,
    viewer: &User,
    owner: UserId,
    platform: Platform,
    token: &str,
) -> Result<(Device, bool), ApiError> {
    only_self(viewer, owner)?;
    if !ports.push.supports(platform) {
        return Err(ApiError::invalid(
            "platform",
            format!("push to {} is not configured in this deployment", platform.as_str()),
        ));
    }
    let device_id = Device::id_for(platform, token);
    let known = ports.devices.devices(owner).await?.iter().any(|d| d.device_id == device_id);
    let endpoint_arn = ports.push.create_endpoint(platform, token, owner).await.map_err(push_failure)?;
    let device = Device {
        device_id,
        platform,
        token: token.to_string(),
        endpoint_arn,
        registered_at: ports.clock.now(),
    };
    ports.devices.mark_company_devices(viewer.company_id).await?;
    let displaced = ports.devices.put_device(owner, &device, MAX_DEVICES_PER_USER).await?;
    for old in displaced.iter().filter(|d| d.endpoint_arn != device.endpoint_arn) {
        if let Err(e) = ports.push.delete_endpoint(&old.endpoint_arn).await {
            tracing::warn!(endpoint = %old.endpoint_arn, error = %e, "displaced endpoint not deleted");
        }
    }
    tracing::info!(user = %owner, device = %device.device_id, platform = platform.as_str(), new = !known, "device registered");
    Ok((device, !known))
}

pub async fn list(ports: &Ports, viewer: &User, owner: UserId) -> Result<Vec<Device>, ApiError> {
    only_self(viewer, owner)?;
    Ok(ports.devices.devices(owner).await?)
}

/// Removes a device and its endpoint.
pub async fn unregister(
    ports: &Ports,
    viewer: &User,
    owner: UserId,
    device_id: &str,
) -> Result<(), ApiError> {
    only_self(viewer, owner)?;
    let removed = ports
        .devices
        .remove_device(owner, device_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("you have no device {device_id}")))?;
    if let Err(e) = ports.push.delete_endpoint(&removed.endpoint_arn).await {
        tracing::warn!(endpoint = %removed.endpoint_arn, error = %e, "endpoint not deleted");
    }
    Ok(())
}

/// Checks an unsubscribe link without acting on it (what a person sees before confirming; mail
/// scanners that fetch every link change nothing): its user and asset when it is ours.
pub fn check_unsubscribe_link(
    ports: &Ports,
    user: Option<&str>,
    brochure: Option<&str>,
    signature: Option<&str>,
) -> Result<(UserId, u64), ApiError> {
    let user: UserId = user
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| ApiError::invalid("user", "the link has no valid user"))?;
    let brochure: u64 = brochure
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| ApiError::invalid("brochure", "the link has no valid brochure"))?;
    let signature = signature.ok_or_else(|| ApiError::invalid("sig", "the link is not signed"))?;
    let settings = ports
        .channels
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorKind::Unavailable, "unsubscribe links are not configured"))?;
    if !settings.links.verify(user, brochure, signature) {
        return Err(ApiError::new(ErrorKind::InsufficientPermissions, "this unsubscribe link is not valid")
            .with_parameter("sig"));
    }
    Ok((user, brochure))
}

/// Follows a confirmed unsubscribe link (a POST): records ALP-EUN for the link's user and asset.
pub async fn unsubscribe(
    ports: &Ports,
    user: Option<&str>,
    brochure: Option<&str>,
    signature: Option<&str>,
) -> Result<(UserId, u64), ApiError> {
    let (user, brochure) = check_unsubscribe_link(ports, user, brochure, signature)?;
    match ports.directory.unsubscribe_emails(brochure, user).await {
        Ok(()) => {
            tracing::info!(%user, brochure, "unsubscribed from emails (ALP-EUN)");
            Ok((user, brochure))
        }
        Err(crate::StoreError::Conflict(_)) => {
            Err(ApiError::new(ErrorKind::NotFound, format!("asset {brochure} no longer exists")))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_checked_field_by_field() {
        let param = |body: &str| parse_registration(body.as_bytes()).unwrap_err().parameter.unwrap();
        let apns = "a".repeat(64);
        let (p, t) = parse_registration(
            format!(r#"{{"platform":"APNS","token":"{}"}}"#, apns.to_uppercase()).as_bytes(),
        )
        .unwrap();
        assert_eq!((p, t), (Platform::Apns, apns.clone()));
        assert!(parse_registration(br#"{"platform":"GCM","token":"fcm:abc-_.123"}"#).is_ok());
        assert_eq!(param("nope"), "body");
        assert_eq!(param("[]"), "body");
        assert_eq!(param(r#"{"platform":"WNS","token":"x"}"#), "platform");
        assert_eq!(param(r#"{"token":"x"}"#), "platform");
        assert_eq!(param(r#"{"platform":"GCM"}"#), "token");
        assert_eq!(param(r#"{"platform":"GCM","token":""}"#), "token");
        assert_eq!(param(r#"{"platform":"GCM","token":"has space"}"#), "token");
        assert_eq!(param(r#"{"platform":"APNS","token":"xyz"}"#), "token");
        assert_eq!(param(&format!(r#"{{"platform":"APNS","token":"{apns}","extra":1}}"#)), "extra");
    }

    #[test]
    fn views_show_only_the_end_of_the_token() {
        let d = Device {
            device_id: "id".into(),
            platform: Platform::Gcm,
            token: "0123456789abcdef".into(),
            endpoint_arn: "arn".into(),
            registered_at: chrono::Utc::now(),
        };
        assert_eq!(DeviceView::from(&d).token_suffix, "89abcdef");
    }
}
